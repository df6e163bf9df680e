//! Stopping Z3 from another thread when the work is cancelled.
//!
//! The z3 crate's `ContextHandle` borrows the thread-local context, so it cannot be handed
//! to the thread that cancels; `Z3_interrupt` itself is made to be called from any thread.

#![allow(unsafe_code)]

use std::ptr::NonNull;

use simplebpf_compiler::cancel::{Cancel, Hook};

/// Interrupts this thread's Z3 context if `cancel` fires while the returned hook lives.
pub fn on_cancel(cancel: &Cancel) -> Hook {
    let context = z3::Context::thread_local();
    let raw = context.get_z3_context().as_ptr() as usize;
    cancel.on_cancel(move || {
        let pointer = NonNull::new(raw as *mut z3_sys::_Z3_context).expect("a live context");
        // SAFETY: the context is this thread's thread-local one, alive for the thread's
        // lifetime, which outlasts the hook (it is dropped on this thread before the thread
        // ends); Z3_interrupt only sets the context's cancel flag and is meant to be called
        // from another thread while the solver runs.
        unsafe { z3_sys::Z3_interrupt(pointer) };
    })
}
