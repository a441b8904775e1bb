//! D1 answers "database is locked" (`SQLITE_BUSY`) when another process
//! holds its write lock — locally, `wrangler d1 execute`, as tests that seed
//! or age rows use it while the stack serves. Such a statement did not run,
//! so the Workers run it again (shared/src/workers/db.rs), writes included:
//! the caller gets its answer late, never a 500. (This binary's one test owns
//! its stack: the lock would stall any other.)

use integration_tests::stack;
use serde_json::json;

#[test]
fn writes_refused_on_a_locked_database_run_once_it_is_free() {
    let s = stack();
    let sub = format!("contention-{}", dexto_shared::ids::new_id(""));
    let token = s.session_token(&sub, &format!("{sub}@example.com"));
    assert_eq!(s.call("GET", "/api/keys", &token, None).status, 200, "the account exists");

    let lock = s.lock_d1();
    let create = std::thread::spawn({
        let token = token.clone();
        move || stack().call("POST", "/api/keys", &token, Some(json!({"name": "while locked"})))
    });
    // The key's insert met the lock and is waiting to run again.
    s.log_line(&["d1.retry", "SQLITE_BUSY"]);
    lock.release();
    let created = create.join().expect("the request thread");
    assert_eq!(created.status, 200, "{}", created.body);
    let keys = s.call("GET", "/api/keys", &token, None).json();
    let named: Vec<_> = keys["data"].as_array().unwrap().iter().filter(|k| k["name"] == "while locked").collect();
    assert_eq!(named.len(), 1, "created once: {keys}");
}
