//! Which producer's C a build keeps: the rules backend's, or an LLM's (from its lockfile or a
//! conversation), with the rules backend as the announced fallback. Every choice went
//! through the gate; this module only decides which gated program wins and records how.

use std::path::PathBuf;

use simplebpf_compiler::llm::screen::ScreenError;
use simplebpf_optimizer::Rejection;
use simplebpf_optimizer::llm::{Conversations, Outcome, Round};

use crate::lock::{LockError, Stale};

/// What happens when no answer is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Fallback {
    /// Keep the rules backend's program, and say so.
    #[default]
    Rules,
    /// Fail; write nothing.
    None,
}

/// How the lockfile is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// A fresh lock is used without asking the model; otherwise the model is asked.
    #[default]
    Use,
    /// Never ask the model: a missing or stale lock is an error.
    Locked,
    /// Ask the model even when a fresh lock exists.
    Update,
}

/// The LLM backend's settings (the API key is not here: only the client holds it).
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The server's base URL, e.g. `http://127.0.0.1:8080/v1`.
    pub url: Option<String>,
    pub model: Option<String>,
    pub conversations: Conversations,
    pub fallback: Fallback,
    pub lock: LockMode,
    pub lock_path: PathBuf,
}

/// Which producer wrote the kept program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rules,
    Llm,
}

/// How the lockfile figured in a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockUse {
    /// Not an LLM build, or no lock was read or written.
    None,
    /// The kept program is the lock's.
    Used(PathBuf),
    /// The kept program is a new answer, written to the lock with the outputs.
    Written(PathBuf),
    /// A lock exists but was written for something else, so the model was asked.
    Stale { path: PathBuf, why: Stale },
}

/// The report's `backend` section.
#[derive(Debug, Clone)]
pub struct BackendReport {
    pub kind: Kind,
    /// The LLM backend was asked and the rules backend's program was kept instead.
    pub fallback: bool,
    pub url: Option<String>,
    pub model: Option<String>,
    pub prompt_sha256: Option<String>,
    pub lock: LockUse,
    pub rounds: Vec<Round>,
}

impl BackendReport {
    pub fn rules() -> BackendReport {
        BackendReport {
            kind: Kind::Rules,
            fallback: false,
            url: None,
            model: None,
            prompt_sha256: None,
            lock: LockUse::None,
            rounds: Vec::new(),
        }
    }

    /// The accepted round, when an answer was kept.
    pub fn accepted_round(&self) -> Option<&Round> {
        match self.kind {
            Kind::Llm => self
                .rounds
                .iter()
                .find(|r| matches!(r.outcome, Outcome::Accepted)),
            Kind::Rules => None,
        }
    }

    /// What the table's `backend` column says.
    pub fn label(&self) -> String {
        match (self.kind, &self.lock, self.accepted_round()) {
            (Kind::Llm, LockUse::Used(_), _) => "llm (lock)".to_string(),
            (Kind::Llm, _, Some(round)) if round.sample > 1 => {
                format!("llm (sample {}, round {})", round.sample, round.round)
            }
            (Kind::Llm, _, Some(round)) => format!("llm (round {})", round.round),
            (Kind::Llm, _, None) => "llm".to_string(),
            (Kind::Rules, _, _) if self.fallback => "rules (fallback)".to_string(),
            (Kind::Rules, _, _) => "rules".to_string(),
        }
    }
}

/// Why a lock was not used, when that ends the build.
#[derive(Debug, thiserror::Error)]
pub enum LockFailure {
    #[error(transparent)]
    Unreadable(#[from] LockError),
    #[error("--locked: there is no lockfile {}", .0.display())]
    Missing(PathBuf),
    #[error("--locked: the lockfile {} is stale: {why}", path.display())]
    Stale { path: PathBuf, why: Stale },
    #[error("the program in the lockfile {} breaks the output contract: {error}", path.display())]
    Screen { path: PathBuf, error: ScreenError },
    #[error("the program in the lockfile {} no longer passes the gate: {rejection}", path.display())]
    Rejected {
        path: PathBuf,
        rejection: Box<Rejection>,
    },
}
