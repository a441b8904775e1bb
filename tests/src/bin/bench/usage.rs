//! Usage queries on a seeded ledger: 120 000 rows for one user over the past
//! year (≈ 10 000 in a month) plus 30 000 rows of other users, written with
//! one recursive-CTE INSERT through `wrangler d1 execute`. Prints p50/p99 of
//! each usage endpoint; a month's summary must not cost like a year's.

use integration_tests::client::agent;
use integration_tests::{Stack, TestUser};
use std::io::Read;
use std::time::{Duration, Instant};

const ROWS: i64 = 120_000;
const OTHER_ROWS: i64 = 30_000;
const YEAR_MS: i64 = 365 * 86_400_000;

fn seed(stack: &Stack, user: &TestUser, now: i64) {
    let step = YEAR_MS / ROWS;
    let insert = |rows: i64, prefix: &str, user_expr: &str| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
             INSERT INTO usage_ledger (request_id, user_id, key_id, model, prompt_tokens, completion_tokens,
               provider_cost_micros, user_price_micros, price_basis, billing_status, stream, created_at)
             SELECT printf('{prefix}%07d', i), {user_expr}, CASE i % 2 WHEN 0 THEN '{key}' ELSE 'key_bench_2' END,
               CASE i % 5 WHEN 0 THEN 'openai/gpt-4o' WHEN 1 THEN 'openai/gpt-4o-mini' WHEN 2 THEN 'anthropic/claude-haiku-4.5'
                          WHEN 3 THEN 'qwen/qwen3-coder:free' ELSE 'mock/no-max' END,
               100 + i % 900, 10 + i % 300, 50 + i % 5000, 60 + i % 6000, 'reported_cost',
               CASE WHEN i % 97 = 0 THEN 'needs_review' ELSE 'billed' END, i % 2, {now} - i * {step}
             FROM n;",
            last = rows - 1,
            key = user.key_id,
        )
    };
    let sql = insert(ROWS, "req_bench_", &format!("'{}'", user.id)) + &insert(OTHER_ROWS, "req_other_", "printf('usr_other_%d', i % 3)");
    let path = stack.run_dir.join("seed.sql");
    std::fs::write(&path, sql).expect("write seed");
    let started = Instant::now();
    stack.d1_file(&path);
    let count = stack.d1(&format!("SELECT COUNT(*) AS n FROM usage_ledger WHERE user_id = '{}'", user.id));
    println!(
        "seeded usage_ledger: {} rows for the bench user + {OTHER_ROWS} others in {:.1} s",
        count[0]["n"],
        started.elapsed().as_secs_f64()
    );
}

fn sample(agent: &ureq::Agent, url: &str, auth: &str, n: usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let started = Instant::now();
        let mut resp = agent.get(url).header("Authorization", auth).call().expect("usage request");
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        let mut body = Vec::new();
        resp.body_mut().as_reader().read_to_end(&mut body).expect("body");
        times.push(started.elapsed());
        bytes = body.len();
    }
    (times, bytes)
}

pub fn run(stack: &Stack, n: usize, percentile: fn(&mut [Duration], f64) -> Duration) {
    let user = stack.new_user("0");
    let now = integration_tests::now_ms();
    seed(stack, &user, now);
    let auth = format!("Bearer {}", user.key);
    let agent = agent();
    let deep = dexto_shared::usage_query::Cursor {
        created_at: now - 100_000 * (YEAR_MS / ROWS),
        request_id: "req_bench_0100000".into(),
    };
    let year_ago = dexto_shared::time::date(now - YEAR_MS);
    let cases = [
        ("GET /me/usage (DO + month)", "/me/usage".to_string()),
        ("summary by model, month", "/me/usage/summary?group_by=model".to_string()),
        ("summary by day, month", "/me/usage/summary?group_by=day".to_string()),
        ("summary by model, year", format!("/me/usage/summary?group_by=model&from={year_ago}")),
        ("history first page (50)", "/me/usage/history".to_string()),
        ("history page at row 100k", format!("/me/usage/history?cursor={}", deep.encode())),
        ("history, model filter", "/me/usage/history?model=openai/gpt-4o".to_string()),
        ("history, unused model", "/me/usage/history?model=nobody/unused".to_string()),
        ("history, needs_review", "/me/usage/history?status=needs_review".to_string()),
        ("export CSV, month", "/me/usage/export?format=csv".to_string()),
    ];
    for (label, path) in cases {
        let url = format!("{}{path}", stack.base);
        sample(&agent, &url, &auth, 3);
        let rounds = if path.contains("export") || path.contains("from=") { (n / 10).max(5) } else { n };
        let (mut times, bytes) = sample(&agent, &url, &auth, rounds);
        let (p50, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
        println!(
            "{label:<28} p50 {:>8.2} ms  p99 {:>8.2} ms  ({bytes} bytes, n = {rounds})",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
}
