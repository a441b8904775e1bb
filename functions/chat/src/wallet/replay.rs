//! Resumable streams. Every data event a stream forwards gets an SSE `id:`
//! (1, 2, …); the events are also kept, up to `STREAM_REPLAY_BYTES` per
//! stream (oldest dropped first), while the stream runs and for
//! `STREAM_REPLAY_SECONDS` after it ended. A client that lost its connection
//! reattaches (`GET /v1/chat/completions/{request_id}/stream` with
//! `Last-Event-ID`) and gets what followed that event — kept events first,
//! then live ones — from this object, which runs the one pump, hold and
//! settlement whatever the number of readers. Only this user's keys reach
//! this object. Memory only: a stream whose object died cannot resume (its
//! upstream connection died with it; the sweep bills it).

use super::client_pipe::ClientPipe;
use dexto_shared::sse::with_event_id;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Ended streams kept per object, in bytes, beyond which the oldest go first.
const ENDED_LIMIT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct ReplayConfig {
    /// Kept per stream (`STREAM_REPLAY_BYTES`, default 1 MiB).
    pub limit_bytes: usize,
    /// How long an ended stream can still be read (`STREAM_REPLAY_SECONDS`, default 120).
    pub retain_ms: i64,
}

struct Kept {
    /// This event's id, or (a comment) the id of the event before it.
    id: u64,
    comment: bool,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Stream {
    kept: VecDeque<Kept>,
    bytes: usize,
    /// The last id assigned.
    last_id: u64,
    /// Events up to this id are no longer kept.
    dropped_through: u64,
    readers: Vec<ClientPipe>,
    ended_at: Option<i64>,
}

/// One stream's events, as its pump publishes them.
#[derive(Clone)]
pub struct Broadcast {
    stream: Rc<RefCell<Stream>>,
    config: ReplayConfig,
}

/// Why a reattach gets nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such stream running or recently ended in this object.
    Unknown,
    /// Events after the client's are no longer kept: the first one kept.
    Dropped { first_kept: u64 },
}

impl Broadcast {
    /// Publishes an event to every reader; data events get the next id.
    pub fn publish(&self, event: Vec<u8>, comment: bool) {
        let mut s = self.stream.borrow_mut();
        let bytes = if comment {
            event
        } else {
            s.last_id += 1;
            with_event_id(&event, s.last_id)
        };
        s.readers.retain(|r| r.send(bytes.clone()));
        let id = s.last_id;
        s.bytes += bytes.len();
        s.kept.push_back(Kept { id, comment, bytes });
        while s.bytes > self.config.limit_bytes {
            let Some(old) = s.kept.pop_front() else { break };
            s.bytes -= old.bytes.len();
            if !old.comment {
                s.dropped_through = old.id;
            }
        }
    }

    /// Whether any reader still reads (the client, or one that reattached).
    pub fn present(&self) -> bool {
        self.stream.borrow().readers.iter().any(ClientPipe::present)
    }

    /// Ends the stream of every reader (the events stay for late readers).
    pub fn end(&self, now_ms: i64) {
        let mut s = self.stream.borrow_mut();
        s.ended_at = Some(now_ms);
        for r in s.readers.drain(..) {
            r.close();
        }
    }

    /// Cuts every reader off (an event the stream cannot carry was skipped).
    pub fn cut_off(&self) {
        for r in self.stream.borrow_mut().readers.drain(..) {
            r.cut_off();
        }
    }
}

/// The object's streams, by request id.
#[derive(Clone, Default)]
pub struct Replays(Rc<RefCell<HashMap<String, Broadcast>>>);

impl Replays {
    /// A new stream whose first reader is `client`.
    pub fn open(&self, request_id: &str, client: ClientPipe, config: ReplayConfig, now_ms: i64) -> Broadcast {
        self.prune(now_ms);
        let stream = Stream { readers: vec![client], ..Stream::default() };
        let b = Broadcast { stream: Rc::new(RefCell::new(stream)), config };
        self.0.borrow_mut().insert(request_id.to_string(), b.clone());
        b
    }

    /// A reader for what follows event `after` (0: from the start).
    pub fn reattach(&self, request_id: &str, after: u64, reader: ClientPipe, now_ms: i64) -> Result<(), Refusal> {
        self.prune(now_ms);
        let streams = self.0.borrow();
        let b = streams.get(request_id).ok_or(Refusal::Unknown)?;
        let mut s = b.stream.borrow_mut();
        if after < s.dropped_through {
            return Err(Refusal::Dropped { first_kept: s.dropped_through + 1 });
        }
        for k in s.kept.iter().filter(|k| if k.comment { k.id >= after } else { k.id > after }) {
            reader.send(k.bytes.clone());
        }
        if s.ended_at.is_some() {
            reader.close();
        } else {
            s.readers.push(reader);
        }
        Ok(())
    }

    /// Also finds stream `request_id` by `alias` (the upstream's response
    /// id, which OpenAI's Responses clients reattach by).
    pub fn alias(&self, request_id: &str, alias: &str) {
        let found = self.0.borrow().get(request_id).cloned();
        if let Some(b) = found {
            self.0.borrow_mut().insert(alias.to_string(), b);
        }
    }

    /// Forgets a stream at once, under every name (its owner died: nothing
    /// of it survives).
    pub fn forget(&self, request_id: &str) {
        let mut streams = self.0.borrow_mut();
        if let Some(gone) = streams.remove(request_id) {
            streams.retain(|_, b| !Rc::ptr_eq(&b.stream, &gone.stream));
        }
    }

    /// Forgets ended streams past their retention, then the oldest ended
    /// ones while they hold more than `ENDED_LIMIT_BYTES`.
    fn prune(&self, now_ms: i64) {
        let mut streams = self.0.borrow_mut();
        streams.retain(|_, b| b.stream.borrow().ended_at.is_none_or(|at| now_ms - at < b.config.retain_ms));
        let mut ended: Vec<(i64, String, usize)> = streams
            .iter()
            .filter_map(|(id, b)| {
                let s = b.stream.borrow();
                s.ended_at.map(|at| (at, id.clone(), s.bytes))
            })
            .collect();
        ended.sort();
        let mut total: usize = ended.iter().map(|e| e.2).sum();
        for (_, id, bytes) in ended {
            if total <= ENDED_LIMIT_BYTES {
                break;
            }
            streams.remove(&id);
            total -= bytes;
        }
    }
}
