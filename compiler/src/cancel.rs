//! Stopping work that is under way: a token the command line cancels when the user presses
//! Ctrl-C (or the process gets SIGTERM), and that long-running steps watch.
//!
//! A step that waits on something outside this thread (a compiler process, a solver)
//! registers a hook that stops it; `cancel` runs every registered hook once. Hooks run on the
//! cancelling thread, under the registry's lock, so a step that unregisters (drops its
//! [`Hook`]) never races with its own hook.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Stop = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    next_id: AtomicU64,
    hooks: Mutex<BTreeMap<u64, Stop>>,
}

/// A cancellation token; clones share one state.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The step's work was stopped by [`Cancel::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// `Err(Interrupted)` once cancelled: for `?` between steps.
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.is_cancelled() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }

    /// Marks the work cancelled and runs every registered hook.
    pub fn cancel(&self) {
        let hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
        self.0.cancelled.store(true, Ordering::SeqCst);
        for stop in hooks.values() {
            stop();
        }
    }

    /// Runs `stop` when the work is cancelled while the returned guard lives (at once, if it
    /// already is).
    pub fn on_cancel(&self, stop: impl Fn() + Send + Sync + 'static) -> Hook {
        let mut hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_cancelled() {
            stop();
        }
        let id = self.0.next_id.fetch_add(1, Ordering::SeqCst);
        hooks.insert(id, Box::new(stop));
        Hook {
            cancel: self.clone(),
            id,
        }
    }
}

/// A registered hook; dropping it unregisters the hook.
#[must_use = "the hook is unregistered when this is dropped"]
pub struct Hook {
    cancel: Cancel,
    id: u64,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook").field("id", &self.id).finish()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let mut hooks = self
            .cancel
            .0
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        hooks.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_hook_runs_once_on_cancel_and_not_after_it_is_dropped() {
        let cancel = Cancel::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let hook = cancel.on_cancel(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let dropped_runs = Arc::new(AtomicUsize::new(0));
        let counted = dropped_runs.clone();
        drop(cancel.on_cancel(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(cancel.check(), Ok(()));
        cancel.clone().cancel();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(dropped_runs.load(Ordering::SeqCst), 0);
        assert_eq!(cancel.check(), Err(Interrupted));
        drop(hook);
    }

    #[test]
    fn a_hook_registered_after_cancel_runs_at_once() {
        let cancel = Cancel::new();
        cancel.cancel();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let _hook = cancel.on_cancel(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
