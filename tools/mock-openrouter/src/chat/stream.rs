//! The streaming half of `/chat/completions`: SSE frames written one by one
//! over a channel (so each is flushed as it is produced), with the stream
//! faults (chunk delays, keep-alives, error frames, dropped connections).

use super::{choice, Chunk, Plan, FLUSH_GRACE, KEEPALIVE};
use crate::App;
use axum::body::Bytes;
use serde_json::json;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Frame writer over the body channel. `false` from a send means the client
/// is gone (hyper dropped the body).
struct Out {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    chunk_delay: Option<Duration>,
    sent_data: bool,
}

impl Out {
    async fn raw(&self, s: String) -> bool {
        self.tx.send(Ok(Bytes::from(s))).await.is_ok()
    }

    async fn comment(&self) -> bool {
        self.raw(KEEPALIVE.to_string()).await
    }

    async fn data(&mut self, chunk: &Chunk<'_>) -> bool {
        if let (true, Some(d)) = (self.sent_data, self.chunk_delay) {
            tokio::time::sleep(d).await;
        }
        self.sent_data = true;
        let json = serde_json::to_string(chunk).expect("chunk serialises");
        self.raw(format!("data: {json}\n\n")).await
    }

    /// Break the connection: the body stream yields an io error.
    async fn drop_connection(&self) {
        tokio::time::sleep(FLUSH_GRACE).await;
        let err = io::Error::new(io::ErrorKind::ConnectionAborted, "mock drop_after");
        let _ = self.tx.send(Err(err)).await;
    }
}

enum End {
    Done,
    ClientGone,
    Errored,
    Dropped,
}

pub(super) async fn run_stream(app: Arc<App>, plan: Plan, tx: mpsc::Sender<Result<Bytes, io::Error>>) {
    let mut out = Out {
        tx,
        chunk_delay: plan.faults.chunk_delay_ms.map(Duration::from_millis),
        sent_data: false,
    };
    let (sent, end) = emit(&plan, &mut out).await;
    match end {
        End::Done => plan.finish(&app, sent, plan.finish_reason, true, false),
        End::Errored => plan.finish(&app, sent, "error", true, false),
        End::ClientGone | End::Dropped => {
            plan.finish(&app, plan.completion_tokens, plan.finish_reason, true, true)
        }
    }
}

/// Writes the SSE frames; returns how many content tokens went out and why
/// the stream ended.
async fn emit(plan: &Plan, out: &mut Out) -> (u64, End) {
    let f = &plan.faults;
    let n = plan.completion_tokens;
    if !out.comment().await {
        return (0, End::ClientGone);
    }
    for i in 0..=n {
        // Checked before each frame and once after the last, so N >= the
        // token count still fires (in place of the usage frame).
        if f.error_after.is_some_and(|k| k == i || (i == n && k > n)) {
            let error = json!({ "code": 502, "message": "Upstream provider error" });
            let usage = f.error_usage.then(|| plan.usage(i));
            let choices = json!([choice(json!({ "content": "" }), Some("error"))]);
            out.data(&plan.chunk(choices, Some(error), usage)).await;
            return (i, End::Errored);
        }
        if f.drop_after.is_some_and(|k| k == i || (i == n && k > n)) {
            out.drop_connection().await;
            return (i, End::Dropped);
        }
        if i == n {
            break;
        }
        let mut delta = json!({ "content": plan.token(i) });
        if i == 0 {
            delta["role"] = json!("assistant");
        }
        // OpenRouter style puts finish_reason on the last content frame and
        // repeats it in the usage frame; OpenAI style sends it separately.
        let finish = (i + 1 == n && !f.openai_usage).then_some(plan.finish_reason);
        if !out
            .data(&plan.chunk(json!([choice(delta, finish)]), None, None))
            .await
        {
            return (i, End::ClientGone);
        }
        for _ in 0..f.keepalive.unwrap_or(0) {
            if !out.comment().await {
                return (i + 1, End::ClientGone);
            }
        }
    }

    let usage = (!f.no_usage).then(|| plan.usage(n));
    let last = json!([choice(json!({}), Some(plan.finish_reason))]);
    let ok = if f.openai_usage {
        out.data(&plan.chunk(last, None, None)).await
            && match usage {
                Some(u) => out.data(&plan.chunk(json!([]), None, Some(u))).await,
                None => true,
            }
    } else {
        out.data(&plan.chunk(last, None, usage)).await
    };
    if !ok || !out.raw("data: [DONE]\n\n".to_string()).await {
        return (n, End::ClientGone);
    }
    (n, End::Done)
}
