-- What reconciliation found: one row per distinct finding (kind, user and a
-- fingerprint of the amounts), so a drift is reported exactly once however
-- often the cron runs; `resolved_at` is set by an operator.
CREATE TABLE reconciliation_findings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,              -- wallet_mirror_drift | …
    user_id      TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    detail       TEXT NOT NULL,              -- JSON
    found_at     INTEGER NOT NULL,
    resolved_at  INTEGER,
    UNIQUE (kind, user_id, fingerprint)
);
-- Where the last pass stopped (users are visited in id order, a page per run).
CREATE TABLE reconciliation_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), last_user_id TEXT NOT NULL);
