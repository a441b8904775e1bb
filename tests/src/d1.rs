//! Direct access to a running stack's local D1 (`wrangler d1 execute --local`
//! on the run's state directory), for what the API cannot do: seeding ledger
//! rows at chosen times and reading query plans. ≈2 s per call.

use crate::Stack;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// One `wrangler d1 execute` at a time: concurrent ones on the same local
/// database fail with Miniflare "internal error"s.
static SERIAL: Mutex<()> = Mutex::new(());

fn wrangler(stack: &Stack, args: &[&str]) -> Value {
    let _turn = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut attempt = 0;
    loop {
        match execute(stack, args) {
            Ok(value) => return value,
            // The running stack may hold the SQLite lock for a moment; a failed
            // statement did not commit, so running it again is safe.
            Err(e) if attempt < 3 && (e.contains("SQLITE_BUSY") || e.contains("internal error")) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Err(e) => panic!("wrangler d1 execute failed: {e}"),
        }
    }
}

fn execute(stack: &Stack, args: &[&str]) -> Result<Value, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let config = stack.run_dir.join("chat.toml");
    let state = stack.run_dir.join("state");
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$0/scripts/env.sh" && exec "$WRANGLER" d1 execute DB --local --json -c "$1" --persist-to "$2" "${@:3}""#)
        .arg(root)
        .arg(&config)
        .arg(&state)
        .args(args)
        .output()
        .expect("run wrangler d1 execute");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = &text[text.find(['[', '{']).unwrap_or(0)..];
    match serde_json::from_str::<Value>(json) {
        Ok(value) if out.status.success() && value.get("error").is_none() => Ok(value),
        Ok(value) => Err(value.to_string()),
        Err(e) => Err(format!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

impl Stack {
    /// Runs SQL on the stack's D1 and returns the rows of the last statement.
    pub fn d1(&self, sql: &str) -> Vec<Value> {
        let value = wrangler(self, &["--command", sql]);
        value.as_array().and_then(|r| r.last()).and_then(|r| r["results"].as_array()).cloned().unwrap_or_default()
    }

    /// Runs a SQL file (large seeds).
    pub fn d1_file(&self, path: &Path) {
        wrangler(self, &["--file", path.to_str().expect("utf-8 path")]);
    }

    /// `EXPLAIN QUERY PLAN` details of each query (one wrangler call), one line per step.
    pub fn query_plans(&self, queries: &[String]) -> Vec<Vec<String>> {
        let sql: String = queries.iter().map(|q| format!("EXPLAIN QUERY PLAN {q};\n")).collect();
        let value = wrangler(self, &["--command", &sql]);
        let detail = |r: &Value| r["results"].as_array().into_iter().flatten().filter_map(|s| s["detail"].as_str().map(str::to_string)).collect();
        value.as_array().expect("one result per statement").iter().map(detail).collect()
    }

    /// Takes the write lock of the stack's local D1 database from another
    /// process (as `wrangler d1 execute` does for a moment), until the
    /// guard is released or dropped.
    pub fn lock_d1(&self) -> D1Lock {
        let dir = self.run_dir.join("state/v3/d1/miniflare-D1DatabaseObject");
        let file = std::fs::read_dir(&dir)
            .expect("the stack's local D1 directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "sqlite") && p.file_name().is_some_and(|n| n != "metadata.sqlite"))
            .expect("the stack's D1 database file");
        // Retries its own BEGIN while the stack is writing; holds the lock until a line on stdin.
        let script = r#"const { DatabaseSync } = require("node:sqlite");
            const db = new DatabaseSync(process.argv[1]);
            for (;;) { try { db.exec("BEGIN IMMEDIATE"); break; } catch (e) { if (!String(e.message).includes("locked")) throw e; } }
            console.log("locked");
            process.stdin.once("data", () => { db.exec("COMMIT"); console.log("released"); process.exit(0); });"#;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let mut child = Command::new("bash")
            .args(["-c", r#"source "$0/scripts/env.sh" && exec node --no-warnings -e "$1" "$2""#])
            .arg(root)
            .arg(script)
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run node");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).expect("read the locker");
        assert_eq!(line.trim(), "locked", "the locker took the lock");
        D1Lock { child, out }
    }

    /// `GET` a usage endpoint with an API key.
    pub fn usage(&self, key: &str, path_and_query: &str) -> crate::HttpResponse {
        crate::get_with(&format!("{}{path_and_query}", self.base), &[("Authorization", &format!("Bearer {key}"))])
    }
}

/// The stack's D1 write lock, held by another process (`Stack::lock_d1`).
pub struct D1Lock {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl D1Lock {
    /// Commits the other process's (empty) transaction: the lock is free.
    pub fn release(mut self) {
        use std::io::Write;
        self.child.stdin.as_mut().expect("stdin").write_all(b"go\n").expect("tell the locker");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.out, &mut line).expect("read the locker");
        assert_eq!(line.trim(), "released");
    }
}

impl Drop for D1Lock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
