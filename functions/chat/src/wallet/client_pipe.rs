//! The bounded queue between a stream's pump and one reader (the client, or
//! one that reattached: replay.rs). The backlog is bounded, not the event
//! (`sse::queue_admits`): a reader that stops reading is cut off once its
//! limit of bytes waits, while one event of up to `sse::MAX_EVENT_BYTES` still
//! passes to a reader that reads.

use dexto_shared::sse::queue_admits;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Bytes of ordinary events that may wait for a slow client before it is cut
/// off (one larger event may wait on top: `sse::queue_admits`).
pub const BUFFER_LIMIT: usize = 1024 * 1024;

#[derive(Default)]
struct Queue {
    /// Bytes of ordinary events that may wait (`BUFFER_LIMIT`, more for a
    /// reader that reattached: its backlog arrives at once).
    limit: usize,
    items: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The largest event queued since the queue was last empty.
    largest: usize,
    peak: usize,
    /// No more items: the writer finished, or the client was cut off.
    closed: bool,
    cut: bool,
    /// The client's side was dropped (it disconnected).
    reader_gone: bool,
    waker: Option<Waker>,
}

/// The writer's end.
#[derive(Clone)]
pub struct ClientPipe(Rc<RefCell<Queue>>);

/// The response body's end.
pub struct ClientStream(Rc<RefCell<Queue>>);

impl ClientPipe {
    pub fn new() -> (ClientPipe, ClientStream) {
        ClientPipe::with_limit(BUFFER_LIMIT)
    }

    pub fn with_limit(limit: usize) -> (ClientPipe, ClientStream) {
        let q = Rc::new(RefCell::new(Queue { limit, ..Queue::default() }));
        (ClientPipe(q.clone()), ClientStream(q))
    }

    /// Queues bytes for the client; false once the client is gone or cut off.
    pub fn send(&self, bytes: Vec<u8>) -> bool {
        let mut q = self.0.borrow_mut();
        if q.closed || q.reader_gone {
            return false;
        }
        if !queue_admits(q.bytes, q.largest, bytes.len(), q.limit) {
            // Not reading: drop what waits and end its stream with an error.
            cut_queue(&mut q);
            return false;
        }
        q.bytes += bytes.len();
        q.largest = q.largest.max(bytes.len());
        q.peak = q.peak.max(q.bytes);
        q.items.push_back(bytes);
        if let Some(w) = q.waker.take() {
            w.wake();
        }
        true
    }

    /// Ends the client's stream with an error (an event it can never get).
    pub fn cut_off(&self) {
        let mut q = self.0.borrow_mut();
        if !q.closed && !q.reader_gone {
            cut_queue(&mut q);
        }
    }

    pub fn close(&self) {
        let mut q = self.0.borrow_mut();
        q.closed = true;
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    pub fn present(&self) -> bool {
        let q = self.0.borrow();
        !q.cut && !q.reader_gone
    }

    pub fn stats(&self) -> (usize, bool) {
        let q = self.0.borrow();
        (q.peak, q.cut)
    }
}

/// Drops what waits and ends the client's stream with an error.
fn cut_queue(q: &mut Queue) {
    q.items.clear();
    q.bytes = 0;
    q.closed = true;
    q.cut = true;
    if let Some(w) = q.waker.take() {
        w.wake();
    }
}

impl futures::Stream for ClientStream {
    type Item = Result<Vec<u8>, worker::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut q = self.0.borrow_mut();
        if let Some(item) = q.items.pop_front() {
            q.bytes -= item.len();
            if q.items.is_empty() {
                q.largest = 0;
            }
            return Poll::Ready(Some(Ok(item)));
        }
        if q.cut {
            q.cut = false; // report once, then end
            return Poll::Ready(Some(Err(worker::Error::RustError("client too slow: stream cut off".into()))));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        let mut q = self.0.borrow_mut();
        q.reader_gone = true;
        q.items.clear();
        q.bytes = 0;
    }
}
