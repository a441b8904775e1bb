//! Where a running exchange's generation id waits for the sweep: the object's
//! key-value storage, written with `allowUnconfirmed`.
//!
//! Why not the hold's row beside its terms: a stream learns its id in
//! the turn that forwards its first bytes, and any confirmed write closes the
//! object's output gate until it commits, so those bytes waited for the commit
//! on their way to the client (measured locally: stream time to first byte
//! p50 8.8 ms with the id written there, 5.8 ms without it). An unconfirmed
//! write commits in the same way, in the same transaction as whatever else
//! the turn writes; it only lets outgoing bytes go first. If the object dies
//! before that commit, the hold is left without its id, which is the case of
//! an object that died before the upstream named the generation ("Who
//! settles a hold"): the sweep settles it provisionally, never not at all.
//!
//! The id is removed with its hold, in the settlement's transaction.

use std::cell::RefCell;
use std::collections::HashSet;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Function, Object, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Result;

pub struct GenerationIds {
    /// The object's `DurableObjectStorage` (workers-rs has no `put` with options).
    storage: JsValue,
    /// Request ids whose id this incarnation wrote (so settling a request
    /// that never had one costs no delete).
    written: RefCell<HashSet<String>>,
}

fn key(request_id: &str) -> String {
    format!("generation:{request_id}")
}

impl GenerationIds {
    pub fn new(storage: JsValue) -> GenerationIds {
        GenerationIds { storage, written: RefCell::default() }
    }

    /// One key-value operation; counted as the platform bills it on
    /// SQLite-backed objects (a row written per put or delete, read per get).
    fn call(&self, method: &str, args: &[JsValue]) -> Result<Promise> {
        dexto_shared::ops::count(|o| {
            o.do_statements += 1;
            match method {
                "get" => o.do_rows_read += 1,
                _ => o.do_rows_written += 1,
            }
        });
        let f: Function = Reflect::get(&self.storage, &method.into())?.dyn_into()?;
        let result = match args {
            [a] => f.call1(&self.storage, a)?,
            [a, b, c] => f.call3(&self.storage, a, b, c)?,
            _ => return Err("generation ids: unexpected call".into()),
        };
        Ok(result.dyn_into()?)
    }

    /// Records `generation_id` for `request_id`; outgoing bytes do not wait
    /// for it to commit.
    pub fn put(&self, request_id: &str, generation_id: &str) -> Result<()> {
        let options = Object::new();
        Reflect::set(&options, &"allowUnconfirmed".into(), &JsValue::TRUE)?;
        // The write is applied to the object's storage now; the promise only
        // reports its commit, which the transaction's own commit covers.
        let _ = self.call("put", &[key(request_id).into(), generation_id.into(), options.into()])?;
        self.written.borrow_mut().insert(request_id.to_string());
        Ok(())
    }

    /// The id recorded for `request_id`, if any (the sweep's read).
    pub async fn get(&self, request_id: &str) -> Result<Option<String>> {
        let value = JsFuture::from(self.call("get", &[key(request_id).into()])?).await?;
        Ok(value.as_string())
    }

    /// Removes the id of a request this incarnation wrote one for.
    pub fn forget(&self, request_id: &str) -> Result<()> {
        if self.written.borrow_mut().remove(request_id) {
            self.remove(request_id)?;
        }
        Ok(())
    }

    /// Removes the id of `request_id` whoever wrote it (the sweep, after a restart).
    pub fn remove(&self, request_id: &str) -> Result<()> {
        let _ = self.call("delete", &[key(request_id).into()])?;
        Ok(())
    }
}
