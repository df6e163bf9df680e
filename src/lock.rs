//! The lockfile of the LLM backend: `<policy file>.lock` beside the policy, JSON, holding an
//! accepted answer (its C), the model that wrote it, the hashes it was asked under and the
//! object's hash. A fresh lock (same policy bytes, port and prompt templates) is used instead
//! of asking the model — and still judged by the whole gate every time, like any candidate.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The lockfile format this simplebpf writes and reads.
pub const FORMAT: u32 = 1;

/// A lock larger than this is not one simplebpf wrote (the C in it is at most
/// `screen::MAX_BYTES`).
const MAX_LOCK_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub format: u32,
    /// The simplebpf that wrote it.
    pub simplebpf: String,
    pub policy_sha256: String,
    pub port: u16,
    /// The prompt templates' hash (`llm::prompt::templates_sha256`).
    pub prompt_sha256: String,
    pub model: String,
    /// The accepted C.
    pub c: String,
    /// The object's SHA-256 when it was accepted (clang-19 compiles the same C to the same
    /// bytes; a different clang may not, which the gate then judges anew).
    pub object_sha256: String,
}

/// Why a lock does not belong to this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("it was written by a simplebpf with lockfile format {0}, this one reads {FORMAT}")]
    Format(u32),
    #[error("the policy changed since it was written")]
    Policy,
    #[error("it was written for port {0}")]
    Port(u16),
    #[error("the prompt templates changed since it was written")]
    Prompt,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read the lockfile {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the lockfile {} is larger than {MAX_LOCK_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("the lockfile {} is not a simplebpf lock: {error}", path.display())]
    Malformed {
        path: PathBuf,
        error: serde_json::Error,
    },
}

/// What a build is asked under: the lock must match all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub policy_sha256: String,
    pub port: u16,
    pub prompt_sha256: String,
}

impl Lock {
    /// The lock beside `policy`: `fault.appnet` → `fault.appnet.lock`.
    pub fn path_for(policy: &Path) -> PathBuf {
        let mut name = policy.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The lock at `path`, or `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(LockError::Read {
                    path: path.to_path_buf(),
                    error,
                });
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_LOCK_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| LockError::Read {
                path: path.to_path_buf(),
                error,
            })?;
        if bytes.len() as u64 > MAX_LOCK_BYTES {
            return Err(LockError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| LockError::Malformed {
                path: path.to_path_buf(),
                error,
            })
    }

    /// Why the lock was written for something else, or `None` when it is this build's.
    pub fn stale(&self, key: &Key) -> Option<Stale> {
        if self.format != FORMAT {
            Some(Stale::Format(self.format))
        } else if self.policy_sha256 != key.policy_sha256 {
            Some(Stale::Policy)
        } else if self.port != key.port {
            Some(Stale::Port(self.port))
        } else if self.prompt_sha256 != key.prompt_sha256 {
            Some(Stale::Prompt)
        } else {
            None
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).expect("a lock serialises");
        text.push('\n');
        text.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> Lock {
        Lock {
            format: FORMAT,
            simplebpf: "0.1.0".to_string(),
            policy_sha256: "p".to_string(),
            port: 9000,
            prompt_sha256: "t".to_string(),
            model: "m".to_string(),
            c: "int x;\n".to_string(),
            object_sha256: "o".to_string(),
        }
    }

    #[test]
    fn a_lock_round_trips_and_knows_when_it_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = Lock::path_for(&dir.path().join("fault.appnet"));
        assert!(path.ends_with("fault.appnet.lock"));
        assert_eq!(Lock::read(&path).unwrap(), None);
        std::fs::write(&path, lock().to_bytes()).unwrap();
        let read = Lock::read(&path).unwrap().unwrap();
        assert_eq!(read, lock());
        let key = Key {
            policy_sha256: "p".to_string(),
            port: 9000,
            prompt_sha256: "t".to_string(),
        };
        assert_eq!(read.stale(&key), None);
        let other = |f: fn(&mut Key)| {
            let mut k = key.clone();
            f(&mut k);
            read.stale(&k)
        };
        assert_eq!(other(|k| k.policy_sha256 = "q".into()), Some(Stale::Policy));
        assert_eq!(other(|k| k.port = 1), Some(Stale::Port(9000)));
        assert_eq!(other(|k| k.prompt_sha256 = "u".into()), Some(Stale::Prompt));
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            Lock::read(&path),
            Err(LockError::Malformed { .. })
        ));
    }
}
