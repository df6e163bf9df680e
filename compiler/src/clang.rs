//! The one pinned C compiler: C source in, BPF ELF bytes out.
//!
//! Every object simplebpf reports on is built with the same compiler and flags, recorded in the
//! report, so that instruction counts are comparable between builds and machines. The flags
//! make the object a function of the source alone: the debug info names the file by the name
//! it is given, never by the scratch directory it was compiled in.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cancel::Cancel;

/// The compiler binary (Debian's `clang-19`).
pub const CLANG: &str = "clang-19";

/// Where `asm/types.h` lives on Debian's multiarch layout; the BPF target does not look there.
pub const MULTIARCH_INCLUDE: &str = "/usr/include/x86_64-linux-gnu";

/// clang's optimisation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptLevel {
    O1,
    O2,
    O3,
    Os,
}

impl OptLevel {
    pub const ALL: [OptLevel; 4] = [OptLevel::O1, OptLevel::O2, OptLevel::O3, OptLevel::Os];

    pub fn flag(self) -> &'static str {
        match self {
            OptLevel::O1 => "-O1",
            OptLevel::O2 => "-O2",
            OptLevel::O3 => "-O3",
            OptLevel::Os => "-Os",
        }
    }
}

/// The BPF instruction set version clang targets (`-mcpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cpu {
    V2,
    V3,
    V4,
}

impl Cpu {
    pub const ALL: [Cpu; 3] = [Cpu::V2, Cpu::V3, Cpu::V4];

    pub fn name(self) -> &'static str {
        match self {
            Cpu::V2 => "v2",
            Cpu::V3 => "v3",
            Cpu::V4 => "v4",
        }
    }
}

/// How to compile. `Default` is the pinned configuration of ARCHITECTURE.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClangOptions {
    /// The compiler: `clang-19` on `PATH` by default; a path, or another name on `PATH`.
    pub binary: PathBuf,
    /// `-O2` by default.
    pub opt_level: OptLevel,
    /// `v3` by default.
    pub cpu: Cpu,
    /// Killed after this long (30 s by default); a hung compiler must not hang a build.
    pub timeout: Duration,
    /// More include directories (`-I`), searched before the system's.
    pub include_dirs: Vec<PathBuf>,
    /// Macro definitions (`-D NAME` or `-D NAME=VALUE`).
    pub defines: Vec<String>,
    /// For C nobody vouches for (an LLM's): no default include paths (`-nostdinc`, only
    /// clang's own headers and the system's, named explicitly), and clang's address space
    /// capped at `SANDBOX_MEMORY` bytes.
    pub sandbox: bool,
}

/// The memory a sandboxed clang may map.
pub const SANDBOX_MEMORY: u64 = 1 << 30;

impl Default for ClangOptions {
    fn default() -> ClangOptions {
        ClangOptions {
            binary: PathBuf::from(CLANG),
            opt_level: OptLevel::O2,
            cpu: Cpu::V3,
            timeout: Duration::from_secs(30),
            include_dirs: Vec::new(),
            defines: Vec::new(),
            sandbox: false,
        }
    }
}

impl ClangOptions {
    /// The flags, in order, as they go on the command line (without input and output).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec![
            self.opt_level.flag().to_string(),
            "-target".to_string(),
            "bpf".to_string(),
            format!("-mcpu={}", self.cpu.name()),
            "-g".to_string(),
            // The debug info and BTF name the directory "." instead of where clang ran, so
            // the object does not depend on the scratch directory's random name.
            "-fdebug-compilation-dir=.".to_string(),
            // A crashing clang otherwise leaves a reproducer (the preprocessed program) in
            // the temporary directory.
            "-fno-crash-diagnostics".to_string(),
        ];
        for dir in &self.include_dirs {
            flags.push("-I".to_string());
            flags.push(dir.display().to_string());
        }
        if self.sandbox {
            flags.push("-nostdinc".to_string());
            for dir in [
                resource_include(&self.binary),
                MULTIARCH_INCLUDE.to_string(),
                "/usr/include".to_string(),
            ] {
                flags.push("-isystem".to_string());
                flags.push(dir);
            }
        } else {
            flags.push("-I".to_string());
            flags.push(MULTIARCH_INCLUDE.to_string());
        }
        for define in &self.defines {
            flags.push(format!("-D{define}"));
        }
        flags.push("-c".to_string());
        flags
    }
}

/// What to compile.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// C text, written into the scratch directory as `file_name`: the name clang's messages
    /// and the object's debug info cite.
    Text { text: &'a str, file_name: &'a str },
    /// A file where it is, so that the headers beside it are found; clang's messages cite it
    /// by the path as given.
    File(&'a Path),
}

#[derive(Debug, thiserror::Error)]
pub enum ClangError {
    #[error("cannot run `{}`: {error} (scripts/setup installs clang-19)", binary.display())]
    Spawn {
        binary: PathBuf,
        error: std::io::Error,
    },
    #[error("`{CLANG}` did not finish within {} s", timeout.as_secs())]
    Timeout { timeout: Duration },
    #[error("`{CLANG}` rejected the C:\n{stderr}")]
    Rejected { stderr: String },
    #[error(
        "the program is too large for BPF: a jump spans more than 32767 instructions (clang: {message})"
    )]
    TooLarge { message: String },
    #[error("`{CLANG}` failed with an internal error: {message}")]
    Crashed { message: String },
    #[error("cannot use the scratch directory {}: {error}", path.display())]
    Scratch {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

/// clang's own headers (`stddef.h`, `stdbool.h`), which `-nostdinc` leaves out.
fn resource_include(binary: &Path) -> String {
    static DIRS: std::sync::Mutex<BTreeMap<PathBuf, String>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut dirs = DIRS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    dirs.entry(binary.to_path_buf())
        .or_insert_with(|| {
            let output = Command::new(binary).arg("-print-resource-dir").output();
            let dir = output
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/usr/lib/llvm-19/lib/clang/19".to_string());
            format!("{dir}/include")
        })
        .clone()
}

/// `clang --version`'s first line, for the report.
pub fn version(binary: &Path) -> Result<String, ClangError> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|error| ClangError::Spawn {
            binary: binary.to_path_buf(),
            error,
        })?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Compiles C text (cited as `program.bpf.c`) with no way to interrupt it; for tests and
/// tools that compile fixed programs.
pub fn compile(
    c_source: &str,
    scratch: &Path,
    options: &ClangOptions,
) -> Result<Vec<u8>, ClangError> {
    compile_source(
        Source::Text {
            text: c_source,
            file_name: "program.bpf.c",
        },
        scratch,
        options,
        &Cancel::new(),
    )
}

/// Compiles `source` to a BPF object, using `scratch` (a directory the caller owns) for the
/// files clang reads and writes. Returns the object's bytes. Cancelling kills clang's whole
/// process group.
pub fn compile_source(
    source: Source<'_>,
    scratch: &Path,
    options: &ClangOptions,
    cancel: &Cancel,
) -> Result<Vec<u8>, ClangError> {
    let scratch_error = |error| ClangError::Scratch {
        path: scratch.to_path_buf(),
        error,
    };
    let output = scratch.join("program.bpf.o");
    let mut command = Command::new(&options.binary);
    command.args(options.flags());
    match source {
        Source::Text { text, file_name } => {
            std::fs::write(scratch.join(file_name), text).map_err(scratch_error)?;
            // Compiled from inside the scratch directory by its relative name, so that the
            // name is all the object and the messages record.
            command.current_dir(scratch).arg(file_name);
        }
        Source::File(path) => {
            command.arg(path);
        }
    }
    command
        .arg("-o")
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a cancel (or a timeout) stops clang and everything it runs.
        .process_group(0);
    if options.sandbox {
        limit_memory(&mut command);
    }
    cancel.check().map_err(|_| ClangError::Interrupted)?;
    let mut child = command.spawn().map_err(|error| ClangError::Spawn {
        binary: options.binary.clone(),
        error,
    })?;
    let group = child.id();
    let hook = cancel.on_cancel(move || kill_group(group));
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
        match child.try_wait().map_err(|error| ClangError::Spawn {
            binary: options.binary.clone(),
            error,
        })? {
            Some(status) => break status,
            None if started.elapsed() >= options.timeout => {
                kill_group(group);
                let _ = child.wait();
                return Err(ClangError::Timeout {
                    timeout: options.timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    drop(hook);
    let stderr = reader.join().unwrap_or_default();
    if cancel.is_cancelled() {
        return Err(ClangError::Interrupted);
    }
    if !status.success() {
        return Err(classify_failure(stderr));
    }
    std::fs::read(&output).map_err(scratch_error)
}

/// A failed compilation as the user should see it: the program's errors as clang wrote them,
/// but an internal error as its first line, not LLVM's stack dump.
fn classify_failure(stderr: String) -> ClangError {
    let crashed = stderr.contains("Stack dump:") || stderr.contains("PLEASE submit a bug report");
    if !crashed {
        return ClangError::Rejected { stderr };
    }
    let message = stderr
        .lines()
        .find(|line| line.contains("error"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("no message")
        .trim()
        .trim_start_matches("fatal error: ")
        .to_string();
    if message.contains("Branch target out of insn range") {
        ClangError::TooLarge { message }
    } else {
        ClangError::Crashed { message }
    }
}

#[allow(unsafe_code)]
fn limit_memory(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and calls only setrlimit,
    // which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: SANDBOX_MEMORY,
                rlim_max: SANDBOX_MEMORY,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn kill_group(group: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group clang leads; it has no
    // memory-safety preconditions. The group exists until the child is reaped, which happens
    // only after this hook is unregistered or after this call.
    unsafe {
        libc::kill(-(group as libc::pid_t), libc::SIGKILL);
    }
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
    fn the_object_does_not_depend_on_the_scratch_directory() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let options = ClangOptions::default();
        assert_eq!(
            compile(XDP_PASS, one.path(), &options).unwrap(),
            compile(XDP_PASS, two.path(), &options).unwrap()
        );
    }

    #[test]
    fn clang_errors_are_shown_citing_the_given_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let broken = XDP_PASS.replace("return XDP_PASS;", "return XDP_PAS;");
        let source = Source::Text {
            text: &broken,
            file_name: "mine.bpf.c",
        };
        let error = compile_source(source, dir.path(), &ClangOptions::default(), &Cancel::new())
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("mine.bpf.c:6:") && text.contains("undeclared identifier 'XDP_PAS'"),
            "{text}"
        );
        assert!(!text.contains(&dir.path().display().to_string()), "{text}");
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
    fn a_cancelled_compilation_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let source = Source::Text {
            text: XDP_PASS,
            file_name: "p.c",
        };
        let error =
            compile_source(source, dir.path(), &ClangOptions::default(), &cancel).unwrap_err();
        assert!(matches!(error, ClangError::Interrupted), "{error}");
    }

    #[test]
    fn an_internal_error_is_its_first_line() {
        let stderr = "fatal error: error in backend: Branch target out of insn range\nPLEASE submit a bug report to https://github.com/llvm/llvm-project/issues/\nStack dump:\n0. Program arguments: clang-19\n #0 0x00007f llvm::sys::PrintStackTrace\n";
        let error = classify_failure(stderr.to_string());
        assert!(matches!(error, ClangError::TooLarge { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            "the program is too large for BPF: a jump spans more than 32767 instructions (clang: error in backend: Branch target out of insn range)"
        );
        let other = classify_failure(
            "fatal error: error in backend: Cannot select: 0x1\nStack dump:\n".to_string(),
        );
        assert_eq!(
            other.to_string(),
            "`clang-19` failed with an internal error: error in backend: Cannot select: 0x1"
        );
    }

    #[test]
    fn a_sandboxed_compilation_sees_only_the_system_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("local.h"), "#define X 1\n").unwrap();
        let options = ClangOptions {
            sandbox: true,
            ..ClangOptions::default()
        };
        assert!(options.flags().contains(&"-nostdinc".to_string()));
        compile(XDP_PASS, dir.path(), &options).unwrap();
        let with_local = format!("#include \"local.h\"\n{XDP_PASS}");
        let source = Source::Text {
            text: &with_local,
            file_name: "p.c",
        };
        // Quoted includes still look beside the file; the screen refuses them before clang.
        assert!(compile_source(source, dir.path(), &options, &Cancel::new()).is_ok());
    }

    #[test]
    fn the_version_is_clang_19() {
        assert!(
            version(Path::new(CLANG))
                .unwrap()
                .contains("clang version 19."),
            "{}",
            version(Path::new(CLANG)).unwrap()
        );
    }

    #[test]
    fn the_flags_are_pinned() {
        assert_eq!(
            ClangOptions::default().flags().join(" "),
            "-O2 -target bpf -mcpu=v3 -g -fdebug-compilation-dir=. -fno-crash-diagnostics -I /usr/include/x86_64-linux-gnu -c"
        );
    }
}
