//! A money movement's writes as one unit: all of them, or none. The object's
//! statements with no `await` between them commit together at the end of the
//! turn, but a statement that fails does not undo the ones before it — a
//! settlement that dropped its hold and then failed to debit would lose the
//! charge (the sweep finds no hold), one that debited and then failed to
//! write its `applied` record would debit again on a replay. So the
//! movement runs inside `transactionSync`: a failure rolls every statement
//! back, and the object's memory of its rows (memory.rs), which the failed
//! steps may already have changed, is dropped to be read again.

use super::Store;
use wasm_bindgen::closure::ScopedClosure;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Function, Reflect};
use worker::Result;

impl Store {
    /// Runs `f` as one transaction (nested calls join the outer one).
    pub fn atomically<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_transaction.get() {
            return f();
        }
        let mut f = Some(f);
        let mut out: Option<Result<T>> = None;
        self.in_transaction.set(true);
        let called = {
            let mut body = || -> std::result::Result<(), JsValue> {
                let result = f.take().expect("transactionSync runs its callback once")();
                let failed = result.is_err();
                out = Some(result);
                match failed {
                    true => Err(JsValue::from_str("rolled back")),
                    false => Ok(()),
                }
            };
            let callback = ScopedClosure::<dyn FnMut() -> std::result::Result<(), JsValue>>::borrow_mut(&mut body);
            Reflect::get(&self.raw, &"transactionSync".into())
                .and_then(|run| run.dyn_into::<Function>())
                .and_then(|run| run.call1(&self.raw, callback.as_js_value()))
        };
        self.in_transaction.set(false);
        match (called, out) {
            (Ok(_), Some(result)) => result,
            (Err(thrown), out) => {
                self.forget_memory();
                match out {
                    Some(Err(e)) => Err(e),
                    // The callback succeeded and the commit failed, or it never ran.
                    _ => Err(format!("transaction failed: {}", thrown.as_string().unwrap_or_default()).into()),
                }
            }
            (Ok(_), None) => Err("transactionSync returned without running its callback".into()),
        }
    }

    fn forget_memory(&self) {
        *self.mem.borrow_mut() = Default::default();
    }
}
