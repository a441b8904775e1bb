//! Streaming passthrough. The upstream is read by the exchange's `wait_until`
//! task, not by the response body: events are forwarded to the client
//! as soon as each is complete, and if the client goes away the task keeps
//! draining the upstream so the real usage is still billed. At the end the bill
//! is sent as an SSE comment before `[DONE]`:
//! `: dexto-cost usd=0.000123 cents=0.0123 credits_remaining_cents=987 request_id=req_…`

use crate::metering::{Bill, Outcome, Settled};
use dexto_shared::error::GatewayError;
use dexto_shared::http::REQUEST_ID_HEADER;
use dexto_shared::sse::{EventKind, SseSplitter, StreamMeter};
use dexto_shared::wallet_client::WalletClient;
use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::StreamExt;
use worker::{ByteStream, Headers, Response};

type Sender = UnboundedSender<worker::Result<Vec<u8>>>;

/// What the pump needs: the upstream body, the client channel, the status.
pub struct Pipe {
    body: ByteStream,
    tx: Sender,
    status: u16,
}

/// The client's streaming response (fed by `pump`) and the pipe to feed it.
pub fn start(mut upstream: Response, bill: &Bill) -> Result<(Response, Pipe), GatewayError> {
    let internal = |_| GatewayError::Internal("stream setup".into());
    let body = upstream.stream().map_err(internal)?;
    let status = upstream.status_code();
    let (tx, rx) = unbounded();
    let headers = Headers::new();
    for (k, v) in [("content-type", "text/event-stream"), ("cache-control", "no-cache"), (REQUEST_ID_HEADER, bill.request_id.as_str())] {
        headers.set(k, v).map_err(internal)?;
    }
    headers.set("Server-Timing", &format!("hold;dur={}", bill.hold_ms)).map_err(internal)?;
    if let Some(remaining) = bill.rate_limit_remaining {
        headers.set("X-Dexto-RateLimit-Remaining", &remaining.to_string()).map_err(internal)?;
    }
    Ok((Response::from_stream(rx).map_err(internal)?.with_headers(headers), Pipe { body, tx, status }))
}

/// Forwards to the client while it listens; notes when it has gone.
fn forward(tx: &Sender, client_present: &mut bool, bytes: Vec<u8>) {
    if *client_present && tx.unbounded_send(Ok(bytes)).is_err() {
        *client_present = false;
    }
}

/// Forwards events as they arrive, then settles and sends the bill. Runs in
/// the exchange's `wait_until` task, so it outlives a departed client.
pub async fn pump(pipe: Pipe, bill: Bill, wallet: WalletClient) {
    let Pipe { mut body, tx, status } = pipe;
    let mut splitter = SseSplitter::default();
    let mut meter = StreamMeter::default();
    let mut client_present = true;
    let mut interrupted = false;
    let mut done_event = None;
    while let Some(chunk) = body.next().await {
        let Ok(bytes) = chunk else {
            interrupted = true;
            break;
        };
        for event in splitter.push(&bytes) {
            if meter.observe(&event) == EventKind::Done {
                done_event = Some(event); // held back: the bill goes out before it
            } else {
                forward(&tx, &mut client_present, event);
            }
        }
    }
    if let Some(tail) = splitter.finish() {
        meter.observe(&tail);
        forward(&tx, &mut client_present, tail);
    }

    let outcome = Outcome {
        usage: meter.usage.clone(),
        output_bytes: meter.output_bytes,
        generation_id: meter.generation_id.clone(),
        cancelled: !client_present,
        upstream_status: status,
    };
    let settled = bill.settle(&wallet, &outcome, bill.price(&outcome)).await;

    if interrupted {
        let frame = r#"data: {"error":{"message":"The model provider closed the stream early.","type":"api_error","code":"upstream_stream_interrupted"}}"#;
        forward(&tx, &mut client_present, format!("{frame}\n\n").into_bytes());
    }
    forward(&tx, &mut client_present, cost_comment(&bill, &settled).into_bytes());
    if let Some(done) = done_event {
        forward(&tx, &mut client_present, done);
    }
    // Dropping the sender ends the client's stream.
}

fn cost_comment(bill: &Bill, settled: &Settled) -> String {
    let remaining = settled.balance.map(|b| b.whole_cents_floor().to_string()).unwrap_or_else(|| "unknown".into());
    format!(
        ": dexto-cost usd={} cents={} credits_remaining_cents={} request_id={}\n\n",
        settled.charge.user_price.usd_fixed(),
        settled.charge.user_price.cents_exact(),
        remaining,
        bill.request_id
    )
}

