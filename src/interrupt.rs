//! Ctrl-C and SIGTERM: the work under way stops, its temporary files and directories are
//! removed, nothing is written, and the command exits 130 (SIGINT) or 143 (SIGTERM).
//!
//! The first signal cancels the shared [`Cancel`] token: clang's process group is killed, Z3
//! is interrupted, and each step returns [`Interrupted`] so that its temporaries are dropped
//! on the way out. Commits of outputs run under [`commit_guard`], so a signal lands either
//! before a commit (nothing is written) or after it (the outputs are complete). If the work
//! has not ended a few seconds later, or a second signal comes, the registered temporaries
//! are removed here and the process exits at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use simplebpf_compiler::cancel::Cancel;

pub use simplebpf_compiler::cancel::Interrupted;

/// How long cancelled work may take to wind down before the process exits regardless.
const GRACE: Duration = Duration::from_secs(5);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static COMMIT: Mutex<()> = Mutex::new(());
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the handler for SIGINT and SIGTERM; returns the token they cancel.
pub fn install() -> std::io::Result<Cancel> {
    let cancel = Cancel::new();
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let token = cancel.clone();
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            let mut signals = signals.forever();
            let Some(first) = signals.next() else { return };
            SIGNAL.store(first, Ordering::SeqCst);
            {
                let _commit = commit_guard();
                token.cancel();
            }
            let watchdog = std::thread::spawn(move || {
                std::thread::sleep(GRACE);
                exit_now(first);
            });
            if signals.next().is_some() {
                exit_now(first);
            }
            let _ = watchdog.join();
        })?;
    Ok(cancel)
}

/// The exit status for work that a signal interrupted: 128 + the signal's number.
pub fn exit_status() -> Option<u8> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(128 + signal as u8),
    }
}

/// Held while outputs are renamed into place; a signal waits for it.
pub fn commit_guard() -> MutexGuard<'static, ()> {
    COMMIT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remembers a temporary file or directory, to be removed if the process has to exit
/// before the code that made it can clean up. Dropping the guard forgets it.
pub fn register(path: &Path) -> Registered {
    let mut temporaries = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    temporaries.push(path.to_path_buf());
    Registered {
        path: path.to_path_buf(),
    }
}

#[derive(Debug)]
#[must_use = "the path is forgotten when this is dropped"]
pub struct Registered {
    path: PathBuf,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut temporaries = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = temporaries.iter().position(|p| *p == self.path) {
            temporaries.swap_remove(at);
        }
    }
}

/// A scratch directory that is removed when dropped, and by a forced exit.
#[derive(Debug)]
pub struct ScratchDir {
    // Declared first: forgotten before the directory goes.
    _registered: Registered,
    dir: tempfile::TempDir,
}

impl ScratchDir {
    pub fn new() -> std::io::Result<ScratchDir> {
        let dir = tempfile::Builder::new().prefix("simplebpf-").tempdir()?;
        Ok(ScratchDir {
            _registered: register(dir.path()),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn exit_now(signal: i32) -> ! {
    let _commit = commit_guard();
    let temporaries = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    for path in temporaries.iter() {
        // Never through a symlink: whatever is at the path is what goes.
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if metadata.is_dir() => {
                let _ = std::fs::remove_dir_all(path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {}
        }
    }
    eprintln!("interrupted");
    std::process::exit(128 + signal);
}
