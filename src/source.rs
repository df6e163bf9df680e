//! Reading input files with a hard cap on their size, whatever they are: a regular file, a
//! pipe or a device (`/dev/zero` ends after the cap, not when memory does).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Policies larger than this are refused: no real element comes near it, and it bounds the
/// work a mistaken argument (a disk image, a log) can cause.
pub const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;

/// C programs and BPF objects given to `check` and `stats`.
pub const MAX_PROGRAM_BYTES: u64 = 64 * 1024 * 1024;

/// The UTF-8 encoding of U+FEFF, which some editors put at the start of a text file.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Reads at most `limit` bytes of `path`; more is an error that names the file.
pub fn read_capped(path: &Path, limit: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.is_dir() {
        bail!("{} is a directory, not a {what}", path.display());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!(
            "{} is larger than {limit} bytes; a {what} larger than that is refused",
            path.display()
        );
    }
    Ok(bytes)
}

/// A policy file as read from disk.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The file's bytes, without a leading byte-order mark.
    pub bytes: Vec<u8>,
}

impl SourceFile {
    pub fn read(path: &Path) -> anyhow::Result<SourceFile> {
        let mut bytes = read_capped(path, MAX_SOURCE_BYTES, "policy file")?;
        if bytes.starts_with(BYTE_ORDER_MARK) {
            bytes.drain(..BYTE_ORDER_MARK.len());
        }
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
