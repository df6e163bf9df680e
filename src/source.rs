//! Reading policy files.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Policies larger than this are refused before parsing: no real element comes near it, and
/// it bounds the work a mistaken argument (a disk image, a log) can cause.
pub const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;

/// A policy file as read from disk.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl SourceFile {
    pub fn read(path: &Path) -> anyhow::Result<SourceFile> {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            bail!("{} is a directory, not a policy file", path.display());
        }
        if metadata.len() > MAX_SOURCE_BYTES {
            bail!(
                "{} is {} bytes; policies larger than {MAX_SOURCE_BYTES} bytes are refused",
                path.display(),
                metadata.len()
            );
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(SourceFile {
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// The name shown in diagnostics.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// The text for rendering diagnostics; invalid UTF-8 shows as U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}
