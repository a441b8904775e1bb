//! One timer per wallet object for the deadlines of its running exchanges:
//! an upstream that has not answered by `UPSTREAM_TIMEOUT_MS`, and a
//! non-stream reply still being read 100 ms after its headers (its
//! generation id is then recorded for the sweep: exchange.rs).
//!
//! Why not a timer each: almost every deadline is cancelled unreached, yet a
//! runtime timer per deadline cost every request two timers, two callbacks
//! into the wasm and two cancellations — on a busy wallet the object's one
//! thread spent more on timers than on its ledger rows. Here a deadline is
//! an entry in a map, and one loop sleeps while any entry is set, at most
//! `TICK_MS` at a time, so an entry added while it sleeps waits at most that
//! long: deadlines fire up to `TICK_MS` late, which neither use notices.
//! Dropping a `Deadline` cancels it.

use dexto_shared::http::now_ms;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use worker::State;

/// The longest sleep of the loop (and so the most a deadline fires late).
const TICK_MS: i64 = 50;

type Action = Box<dyn FnOnce()>;

#[derive(Default)]
struct Entries {
    next_id: u64,
    /// By (time, id): the earliest first.
    due: BTreeMap<(i64, u64), Action>,
    ticking: bool,
}

#[derive(Clone)]
pub struct Deadlines {
    entries: Rc<RefCell<Entries>>,
    state: Rc<State>,
}

/// A pending deadline; dropping it cancels the action.
pub struct Deadline {
    entries: Weak<RefCell<Entries>>,
    key: (i64, u64),
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(entries) = self.entries.upgrade() {
            entries.borrow_mut().due.remove(&self.key);
        }
    }
}

impl Deadlines {
    pub fn new(state: Rc<State>) -> Deadlines {
        Deadlines { entries: Rc::default(), state }
    }

    /// Runs `action` at `at_ms` (up to `TICK_MS` later) unless the returned
    /// `Deadline` is dropped before.
    pub fn at(&self, at_ms: i64, action: impl FnOnce() + 'static) -> Deadline {
        let mut entries = self.entries.borrow_mut();
        entries.next_id += 1;
        let key = (at_ms, entries.next_id);
        entries.due.insert(key, Box::new(action));
        if !entries.ticking {
            entries.ticking = true;
            self.state.wait_until(tick(self.entries.clone()));
        }
        Deadline { entries: Rc::downgrade(&self.entries), key }
    }
}

/// Sleeps until the earliest deadline (at most `TICK_MS`), runs those due,
/// and stops when none is left.
async fn tick(entries: Rc<RefCell<Entries>>) {
    loop {
        let wait = {
            let mut e = entries.borrow_mut();
            match e.due.keys().next() {
                Some(&(at, _)) => (at - now_ms()).clamp(0, TICK_MS),
                None => {
                    e.ticking = false;
                    return;
                }
            }
        };
        worker::Delay::from(std::time::Duration::from_millis(wait as u64)).await;
        let fired = {
            let mut e = entries.borrow_mut();
            let later = e.due.split_off(&(now_ms() + 1, 0));
            std::mem::replace(&mut e.due, later)
        };
        // Outside the borrow: an action may set or cancel deadlines.
        for action in fired.into_values() {
            action();
        }
    }
}
