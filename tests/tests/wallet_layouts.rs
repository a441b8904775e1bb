//! A wallet object created before today's storage layout goes on from its own
//! rows: its open holds' terms in `exchanges` (with the generation id, before
//! it moved to key-value storage) rather than in the hold's row, and its
//! settled spending as one `spend` row per scope, window and window start
//! rather than one `spend_windows` row per scope. The test writes a live
//! object's rows back into that layout while its stack is down (node's
//! built-in SQLite on the object's file), starts again on them, and checks
//! that the sweep bills the open exchange by its old terms exactly once and
//! that every cap counts the spending the old rows held.

use integration_tests::{start, SseReader, Stack, TestUser};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Rewrites the wallet object of `user` (under wrangler's state directory)
/// into the layout from before: terms and attempts out of `holds` into
/// `exchanges` with `generation` as the open exchange's id (and out of the
/// key-value storage); the user scope's `spend_windows` row back into
/// per-window `spend` rows, with an older day's and month's row (777 µ$, in
/// the lifetime total too); and the key's row kept, with 555 µ$ more today
/// in `spend` — what a rollback to a build from before leaves (it starts a
/// new `spend` table with only what it settled).
const TO_OLD_LAYOUT: &str = r#"
const { DatabaseSync } = require("node:sqlite");
const fs = require("node:fs"), path = require("node:path");
const [dir, user, generation] = process.argv.slice(1);
const DAY = 86400000, OLD = 40 * DAY;
let found = 0;
for (const name of fs.readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")) {
  const db = new DatabaseSync(path.join(dir, name), { timeout: 10000 });
  const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name));
  if (!tables.has("wallet") || db.prepare("SELECT user_id FROM wallet").get()?.user_id !== user) { db.close(); continue; }
  found++;
  db.exec("BEGIN IMMEDIATE");
  const open = db.prepare("SELECT request_id FROM holds WHERE terms IS NOT NULL").all();
  if (open.length !== 1) throw new Error(`expected one open hold, found ${open.length}`);
  db.prepare("INSERT INTO exchanges (request_id, terms, generation_id, attempts) SELECT request_id, terms, ?, attempts FROM holds").run(generation);
  db.exec("ALTER TABLE holds DROP COLUMN terms; ALTER TABLE holds DROP COLUMN attempts;");
  if (tables.has("_cf_KV")) db.exec("DELETE FROM _cf_KV WHERE key LIKE 'generation:%'");
  db.exec(`CREATE TABLE spend (scope TEXT NOT NULL, window TEXT NOT NULL, window_start INTEGER NOT NULL, micros INTEGER NOT NULL, PRIMARY KEY (scope, window, window_start)) WITHOUT ROWID;
    INSERT INTO spend SELECT scope, 'daily', daily_start, daily FROM spend_windows WHERE scope = 'user';
    INSERT INTO spend SELECT scope, 'daily', daily_start - ${OLD}, 777 FROM spend_windows WHERE scope = 'user';
    INSERT INTO spend SELECT scope, 'monthly', monthly_start, monthly FROM spend_windows WHERE scope = 'user';
    INSERT INTO spend SELECT scope, 'monthly', monthly_start - ${OLD}, 777 FROM spend_windows WHERE scope = 'user';
    INSERT INTO spend SELECT scope, 'lifetime', 0, lifetime + 777 FROM spend_windows WHERE scope = 'user';
    DELETE FROM spend_windows WHERE scope = 'user';
    INSERT INTO spend SELECT scope, 'daily', daily_start, 555 FROM spend_windows;
    INSERT INTO spend SELECT scope, 'monthly', monthly_start, 555 FROM spend_windows;
    INSERT INTO spend SELECT scope, 'lifetime', 0, 555 FROM spend_windows;`);
  if (db.prepare("SELECT COUNT(*) AS n FROM spend WHERE scope LIKE 'key:%'").get().n !== 3) throw new Error("no key scope");
  db.exec("COMMIT");
  db.close();
}
if (found !== 1) throw new Error(`expected the user's one wallet object, found ${found}`);
"#;

fn to_old_layout(state: &Path, user: &str, generation: &str) {
    let objects = std::fs::read_dir(state.join("v3/do"))
        .expect("the objects' state")
        .flatten()
        .map(|d| d.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("-WalletDO")))
        .expect("the wallet objects' directory");
    // The project's pinned Node (scripts/env.sh; `node:sqlite` needs 22.13+).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$0/scripts/env.sh" && exec node --no-warnings -e "$1" "${@:2}""#)
        .arg(root)
        .arg(TO_OLD_LAYOUT)
        .arg(&objects)
        .args([user, generation])
        .output()
        .expect("node");
    assert!(out.status.success(), "rewriting the object: {}", String::from_utf8_lossy(&out.stderr));
}

fn cap(s: &Stack, user: &TestUser, body: Value) {
    let r = s.admin("PUT", &format!("/admin/users/{}/caps", user.id), Some(body));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Spent per cap, in µ$, from the user view (`spent_usd`: exact decimals).
fn spent(user: &Value) -> Vec<(String, i64)> {
    let caps = user["caps"].as_array().expect("caps");
    let micros = |v: &Value| dexto_shared::money::Picos::parse_usd(&v.to_string()).expect("usd").ceil_micros().0;
    let mut seen: Vec<(String, i64)> =
        caps.iter().map(|c| (format!("{}/{}", c["scope"].as_str().unwrap_or("?"), c["window"].as_str().unwrap_or("?")), micros(&c["spent_usd"]))).collect();
    seen.sort();
    seen
}

#[test]
fn an_object_from_before_bills_its_open_exchange_by_the_old_terms_and_keeps_its_spending() {
    let vars = [("HOLD_TTL_SECONDS", "2")];
    let s = start(&vars);
    let day = utc_day(integration_tests::now_ms());
    let u = s.new_user("1");
    for window in ["daily", "monthly", "lifetime"] {
        cap(&s, &u, json!({"scope": "user", "window": window, "limit_usd": 0.5}));
    }
    for window in ["daily", "lifetime"] {
        cap(&s, &u, json!({"scope": "key", "key_id": u.key_id, "window": window, "limit_usd": 0.5}));
    }
    let settled = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "[[mock:tokens=20]]"}]}));
    assert_eq!(settled.status, 200, "{}", settled.body);
    let first = s.settled_user(&u.id, 1)["recent_usage"][0]["user_price_micros"].as_i64().expect("price");

    // An exchange in flight when the stack goes down, its generation named.
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 100,
        "messages": [{"role": "user", "content": "[[mock:tokens=40,chunk_delay_ms=100]]"}]});
    let mut sse: SseReader = s.stream(&u.key, &body);
    let mut generation = None;
    while generation.is_none() {
        let (event, _) = sse.next_event().expect("the stream has begun");
        generation = event.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_string);
    }
    let generation = generation.unwrap();
    let s = s.restart_with(&vars, |state| to_old_layout(state, &u.id, &generation));

    // The sweep finds the hold's terms in `exchanges` and bills the upstream's record.
    let user = s.books_balanced(&u.id, 2);
    let record = integration_tests::get_with(&format!("{}/generation?id={generation}", s.mock), &[("Authorization", "Bearer test")]).json()["data"].clone();
    assert_eq!(user["recent_usage"][1]["user_price_micros"], first);
    let swept = user["recent_usage"][0].clone();
    assert_eq!((swept["completion_tokens"].clone(), swept["billing_status"].as_str()), (record["tokens_completion"].clone(), Some("billed")), "{swept}");
    let price = dexto_shared::money::Picos::parse_usd(&record["total_cost"].to_string()).unwrap().ceil_micros().0;
    assert_eq!(swept["user_price_micros"], price, "exact, by the old terms and the upstream's record");
    assert_eq!(user["balance_micros"], 1_000_000 - first - price);
    let again = s.admin("POST", &format!("/admin/users/{}/holds/sweep", u.id), None);
    assert_eq!((again.json()["settled"].as_u64(), again.json()["provisional"].as_u64()), (Some(0), Some(0)), "exactly once");

    // The old rows' spending counts: the latest day and month, the lifetime
    // total, added to a row the scope already had (a UTC day that turned
    // mid-test leaves only the lifetime exact).
    let today = first + price;
    let mut want = vec![
        ("key/daily".to_string(), today + 555),
        ("key/lifetime".to_string(), today + 555),
        ("user/daily".to_string(), today),
        ("user/lifetime".to_string(), today + 777),
        ("user/monthly".to_string(), today),
    ];
    let mut seen = spent(&user);
    if utc_day(integration_tests::now_ms()) != day {
        (want, seen) = (lifetime(want), lifetime(seen));
    }
    assert_eq!(seen, want, "{:#}", user["caps"]);
}

fn utc_day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

fn lifetime(spent: Vec<(String, i64)>) -> Vec<(String, i64)> {
    spent.into_iter().filter(|(cap, _)| cap.ends_with("/lifetime")).collect()
}
