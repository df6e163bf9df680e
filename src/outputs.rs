//! Writing a build's files into an output directory that other users or other builds may
//! share: never through a symlink, never a mix of two builds, never a partial file.
//!
//! Each file is first written to a fresh temporary in the directory, created exclusively
//! under a random name (so no one can plant a link where it will be written). The whole set
//! is then renamed into place while holding an advisory lock on the directory, so concurrent
//! builds commit one after another; a rename replaces whatever is at the final name — a
//! symlink included — and never writes through it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use simplebpf_compiler::cancel::Cancel;

use crate::interrupt;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create the output directory {}: {error}", path.display())]
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the output path {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot write into the output directory {}: {error}", path.display())]
    NotWritable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot lock the output directory {}: {error}", path.display())]
    Lock {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

/// A directory checked to be one that files can be created in.
#[derive(Debug, Clone)]
pub struct OutputDir {
    path: PathBuf,
}

/// One file of a set: its name in the directory and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct OutputFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

impl OutputDir {
    /// Makes sure the directory is one files can be created in, or that it can be made:
    /// the nearest part of the path that exists must be a directory this process can write
    /// into. Nothing is created yet (a build that fails leaves no empty directory). Run it
    /// before any work, so that a wrong `-o` is said at once.
    pub fn prepare(path: &Path) -> Result<OutputDir, OutputError> {
        let mut existing = path;
        while std::fs::symlink_metadata(existing).is_err() {
            match existing.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
                _ => {
                    existing = Path::new(".");
                    break;
                }
            }
        }
        if !existing.is_dir() {
            return Err(if existing == path {
                OutputError::NotADirectory {
                    path: path.to_path_buf(),
                }
            } else {
                OutputError::Create {
                    path: path.to_path_buf(),
                    error: std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        format!("{} is not a directory", existing.display()),
                    ),
                }
            });
        }
        let probe = temporary(existing, "probe").map_err(|error| OutputError::NotWritable {
            path: path.to_path_buf(),
            error,
        })?;
        drop(probe);
        Ok(OutputDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a file of this name goes.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes every file, or none: all are staged first, then renamed into place together
    /// under the directory's lock. Returns the final paths, in order.
    pub fn commit(
        &self,
        files: &[OutputFile<'_>],
        cancel: &Cancel,
    ) -> Result<Vec<PathBuf>, OutputError> {
        std::fs::create_dir_all(&self.path).map_err(|error| OutputError::Create {
            path: self.path.clone(),
            error,
        })?;
        let mut staged = Vec::with_capacity(files.len());
        for file in files {
            let target = self.join(file.name);
            let write_error = |error| OutputError::Write {
                path: target.clone(),
                error,
            };
            let mut temp = temporary(&self.path, file.name).map_err(write_error)?;
            let registered = interrupt::register(temp.path());
            temp.write_all(file.bytes).map_err(write_error)?;
            temp.as_file().sync_all().map_err(write_error)?;
            staged.push((temp, registered, target));
        }
        let _lock = self.lock(cancel)?;
        let _commit = interrupt::commit_guard();
        if cancel.is_cancelled() {
            return Err(OutputError::Interrupted);
        }
        let mut written = Vec::with_capacity(staged.len());
        for (temp, _registered, target) in staged {
            temp.persist(&target).map_err(|err| OutputError::Write {
                path: target.clone(),
                error: err.error,
            })?;
            written.push(target);
        }
        Ok(written)
    }

    /// The advisory lock that serialises commits into this directory; waiting for it stops
    /// when the work is cancelled.
    fn lock(&self, cancel: &Cancel) -> Result<File, OutputError> {
        let lock_error = |error| OutputError::Lock {
            path: self.path.clone(),
            error,
        };
        let dir = File::open(&self.path).map_err(lock_error)?;
        loop {
            match dir.try_lock() {
                Ok(()) => return Ok(dir),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if cancel.is_cancelled() {
                        return Err(OutputError::Interrupted);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::Error(error)) => return Err(lock_error(error)),
            }
        }
    }
}

/// A new file in `dir` with a random name, created exclusively (`O_EXCL`: never an existing
/// file, never through a symlink).
fn temporary(dir: &Path, name: &str) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// The SHA-256 of some bytes, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_written_whole_and_replaces_links_instead_of_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let out = OutputDir::prepare(&dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("a")).unwrap();
        let written = out
            .commit(
                &[
                    OutputFile {
                        name: "a",
                        bytes: b"one",
                    },
                    OutputFile {
                        name: "b",
                        bytes: b"two",
                    },
                ],
                &Cancel::new(),
            )
            .unwrap();
        assert_eq!(written, vec![out.join("a"), out.join("b")]);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(out.join("a")).unwrap().is_file());
        assert_eq!(std::fs::read(out.join("a")).unwrap(), b"one");
        let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "temporaries left: {names:?}");
    }

    #[test]
    fn preparing_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir::prepare(&dir.path().join("a/b")).unwrap();
        assert_eq!(out.path(), dir.path().join("a/b"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_cancelled_commit_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir::prepare(dir.path()).unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let result = out.commit(
            &[OutputFile {
                name: "a",
                bytes: b"one",
            }],
            &cancel,
        );
        assert!(matches!(result, Err(OutputError::Interrupted)));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = OutputDir::prepare(&file).unwrap_err().to_string();
        assert!(error.contains(&file.display().to_string()), "{error}");
        let below = file.join("sub");
        let error = OutputDir::prepare(&below).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "cannot create the output directory {}: {} is not a directory",
                below.display(),
                file.display()
            )
        );
    }

    #[test]
    fn sha256_is_the_standard_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
