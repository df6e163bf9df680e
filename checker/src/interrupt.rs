//! Stopping Z3 from another thread when the work is cancelled, and keeping Z3 from taking
//! the signal for itself.
//!
//! The z3 crate's `ContextHandle` borrows the thread-local context, so it cannot be handed
//! to the thread that cancels; `Z3_interrupt` itself is made to be called from any thread.

#![allow(unsafe_code)]

use std::ptr::NonNull;

use simplebpf_compiler::cancel::{Cancel, Hook};

/// Interrupts the Z3 context this thread now uses if `cancel` fires while the returned hook
/// lives. The hook must be dropped while that context is still this thread's: inside the
/// `with_z3_config` closure that made it, when it is one.
pub fn on_cancel(cancel: &Cancel) -> Hook {
    let context = z3::Context::thread_local();
    let raw = context.get_z3_context().as_ptr() as usize;
    cancel.on_cancel(move || {
        let pointer = NonNull::new(raw as *mut z3_sys::_Z3_context).expect("a live context");
        // SAFETY: the context is the one this thread uses while the hook lives (its own, or
        // the one a `with_z3_config` closure set, which outlives the hook dropped inside
        // it), and a hook is never run after it is dropped (the registry's lock);
        // Z3_interrupt only sets the context's cancel flag and is meant to be called from
        // another thread while the solver runs.
        unsafe { z3_sys::Z3_interrupt(pointer) };
    })
}

/// Solver parameters with Z3's own SIGINT handling off: Z3 would otherwise take SIGINT for
/// itself while it solves, and the user's Ctrl-C would only end the current query; the
/// command line's handler stops everything (through `on_cancel`).
pub fn without_ctrl_c() -> z3::Params {
    let mut params = z3::Params::new();
    params.set_bool("ctrl_c", false);
    params
}
