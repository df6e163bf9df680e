//! The one pinned C compiler: C source in, BPF ELF bytes out.
//!
//! Every object simplebpf reports on is built with the same compiler and flags, recorded in the
//! report, so that instruction counts are comparable between builds and machines.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The compiler binary (Debian's `clang-19`).
pub const CLANG: &str = "clang-19";

/// Where `asm/types.h` lives on Debian's multiarch layout; the BPF target does not look there.
pub const MULTIARCH_INCLUDE: &str = "/usr/include/x86_64-linux-gnu";

/// How to compile. `Default` is the pinned configuration of ARCHITECTURE.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClangOptions {
    /// Optimisation flag, `-O2` by default.
    pub opt_level: String,
    /// BPF CPU version, `v3` by default.
    pub cpu: String,
    /// Killed after this long (30 s by default); a hung compiler must not hang a build.
    pub timeout: Duration,
}

impl Default for ClangOptions {
    fn default() -> ClangOptions {
        ClangOptions {
            opt_level: "-O2".to_string(),
            cpu: "v3".to_string(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl ClangOptions {
    /// The flags, in order, as they go on the command line (without input and output).
    pub fn flags(&self) -> Vec<String> {
        vec![
            self.opt_level.clone(),
            "-target".to_string(),
            "bpf".to_string(),
            format!("-mcpu={}", self.cpu),
            "-g".to_string(),
            "-I".to_string(),
            MULTIARCH_INCLUDE.to_string(),
            "-c".to_string(),
        ]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClangError {
    #[error("cannot run `{CLANG}`: {source} (scripts/setup installs it)")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    #[error("`{CLANG}` did not finish within {} s", timeout.as_secs())]
    Timeout { timeout: Duration },
    #[error("`{CLANG}` rejected the C:\n{stderr}")]
    Rejected { stderr: String },
    #[error("cannot use the scratch directory {}: {source}", path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `clang-19 --version`'s first line, for the report.
pub fn version() -> Result<String, ClangError> {
    let output = Command::new(CLANG)
        .arg("--version")
        .output()
        .map_err(|source| ClangError::Spawn { source })?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Compiles `c_source` to a BPF object, using `scratch` (a directory the caller owns) for the
/// input and output files. Returns the object's bytes.
pub fn compile(
    c_source: &str,
    scratch: &Path,
    options: &ClangOptions,
) -> Result<Vec<u8>, ClangError> {
    let scratch_error = |source| ClangError::Scratch {
        path: scratch.to_path_buf(),
        source,
    };
    let input = scratch.join("program.bpf.c");
    let output = scratch.join("program.bpf.o");
    std::fs::write(&input, c_source).map_err(scratch_error)?;
    let mut child = Command::new(CLANG)
        .args(options.flags())
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ClangError::Spawn { source })?;
    // Read stderr on a thread so that a chatty compiler cannot block on a full pipe.
    let mut stderr_pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        match child
            .try_wait()
            .map_err(|source| ClangError::Spawn { source })?
        {
            Some(status) => break status,
            None if started.elapsed() >= options.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ClangError::Timeout {
                    timeout: options.timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(ClangError::Rejected { stderr });
    }
    std::fs::read(&output).map_err(scratch_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XDP_PASS: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pass(struct xdp_md *ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
"#;

    #[test]
    fn compiles_an_xdp_program_to_a_bpf_elf() {
        let dir = tempfile::tempdir().unwrap();
        let elf = compile(XDP_PASS, dir.path(), &ClangOptions::default()).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        // e_machine 247 is EM_BPF.
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 247);
    }

    #[test]
    fn clang_errors_are_shown() {
        let dir = tempfile::tempdir().unwrap();
        let broken = XDP_PASS.replace("return XDP_PASS;", "return XDP_PAS;");
        let error = compile(&broken, dir.path(), &ClangOptions::default()).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("use of undeclared identifier 'XDP_PAS'"),
            "{text}"
        );
    }

    #[test]
    fn a_compiler_past_its_time_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let options = ClangOptions {
            timeout: Duration::ZERO,
            ..ClangOptions::default()
        };
        let error = compile(XDP_PASS, dir.path(), &options).unwrap_err();
        assert!(matches!(error, ClangError::Timeout { .. }), "{error}");
    }

    #[test]
    fn the_version_is_clang_19() {
        assert!(
            version().unwrap().contains("clang version 19."),
            "{}",
            version().unwrap()
        );
    }

    #[test]
    fn the_flags_are_pinned() {
        assert_eq!(
            ClangOptions::default().flags().join(" "),
            "-O2 -target bpf -mcpu=v3 -g -I /usr/include/x86_64-linux-gnu -c"
        );
    }
}
