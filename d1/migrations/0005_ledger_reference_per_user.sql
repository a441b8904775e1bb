-- Ledger references are unique per user, not globally. An admin credit's
-- `admin:<idempotency key>` (or a manual settlement's `usage:<request id>`)
-- used for two users made the second user's row conflict with the first and
-- vanish (`ON CONFLICT DO NOTHING`) while its balance mirror advanced. SQLite
-- cannot drop a column's UNIQUE in place: rebuild the table, keeping every row.

CREATE TABLE credit_ledger_v2 (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL,
    seq                   INTEGER NOT NULL,   -- wallet DO sequence number (total order per user)
    kind                  TEXT NOT NULL,      -- usage | admin_credit | topup | refund | dispute | intro_credit | subscription
    amount_micros         INTEGER NOT NULL,   -- signed
    balance_after_micros  INTEGER NOT NULL,
    reference             TEXT NOT NULL,
    reason                TEXT,
    created_at            INTEGER NOT NULL,
    UNIQUE (user_id, reference)
);
INSERT INTO credit_ledger_v2 (id, user_id, seq, kind, amount_micros, balance_after_micros, reference, reason, created_at)
    SELECT id, user_id, seq, kind, amount_micros, balance_after_micros, reference, reason, created_at FROM credit_ledger;
DROP TABLE credit_ledger;
ALTER TABLE credit_ledger_v2 RENAME TO credit_ledger;
CREATE INDEX credit_user_seq ON credit_ledger (user_id, seq);
