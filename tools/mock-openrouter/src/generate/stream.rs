//! The streaming loop every dialect shares: SSE events written one by one
//! over a channel (so each is flushed as it is produced), with the stream
//! faults (delays between events, keep-alives, a mid-stream error, a dropped
//! connection) applied the same way whatever the dialect writes.

use super::plan::Plan;
use super::Wire;
use crate::App;
use axum::body::Bytes;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// OpenRouter's keep-alive comment, legal in every SSE stream.
const KEEPALIVE: &str = ": OPENROUTER PROCESSING\n\n";
/// Lets hyper flush events already handed over before we break the
/// connection, so the client really sees N events then a drop.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

/// Event writer over the body channel. `false` from a send means the client
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

    /// Content and end events: `chunk_delay_ms` apart.
    async fn paced(&mut self, s: String) -> bool {
        if let (true, Some(d)) = (self.sent_data, self.chunk_delay) {
            tokio::time::sleep(d).await;
        }
        self.sent_data = true;
        self.raw(s).await
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

pub(super) async fn run(wire: &'static dyn Wire, app: Arc<App>, plan: Plan, tx: mpsc::Sender<Result<Bytes, io::Error>>) {
    let mut out = Out {
        tx,
        chunk_delay: plan.faults.chunk_delay_ms.map(Duration::from_millis),
        sent_data: false,
    };
    let (sent, end) = emit(wire, &plan, &mut out).await;
    match end {
        End::Done => plan.finish(&app, sent, plan.finish_reason(), true, false),
        End::Errored => plan.finish(&app, sent, "error", true, false),
        End::ClientGone | End::Dropped => {
            plan.finish(&app, plan.completion_tokens, plan.finish_reason(), true, true)
        }
    }
}

/// Writes the events; returns how many tokens went out and why the stream ended.
async fn emit(wire: &dyn Wire, plan: &Plan, out: &mut Out) -> (u64, End) {
    let f = &plan.faults;
    let n = plan.completion_tokens;
    if !out.raw(KEEPALIVE.to_string()).await {
        return (0, End::ClientGone);
    }
    let opening = wire.opening(plan);
    if !opening.is_empty() && !out.raw(opening).await {
        return (0, End::ClientGone);
    }
    for i in 0..=n {
        // Checked before each token and once after the last, so N >= the
        // token count still fires (in place of the closing events).
        if f.error_after.is_some_and(|k| k == i || (i == n && k > n)) {
            out.paced(wire.failure(plan, i)).await;
            return (i, End::Errored);
        }
        if f.drop_after.is_some_and(|k| k == i || (i == n && k > n)) {
            out.drop_connection().await;
            return (i, End::Dropped);
        }
        if i == n {
            break;
        }
        if !out.paced(wire.delta(plan, i)).await {
            return (i, End::ClientGone);
        }
        for _ in 0..f.keepalive.unwrap_or(0) {
            if !out.raw(KEEPALIVE.to_string()).await {
                return (i + 1, End::ClientGone);
            }
        }
    }
    if !out.paced(wire.closing(plan)).await {
        return (n, End::ClientGone);
    }
    (n, End::Done)
}
