//! The build (ARCHITECTURE.md "Data flow"): policy → IR → the rules backend's C → the gate
//! (clang, object model, contract, verifier, checker, measurements) → report. Used by
//! `simplebpf build` and by build scripts; it returns data, and writes files only through
//! `write_outputs` (`outputs.rs`).

use std::path::PathBuf;
use std::time::Duration;

use simplebpf_checker::Session;
use simplebpf_compiler::backend::{self, Emitted};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::ClangOptions;
use simplebpf_compiler::kernel;
use simplebpf_dsl::Diagnostic;
use simplebpf_optimizer::{Candidate, GateOptions, Gated, KernelUse, Origin, Rejection, Source};

use crate::interrupt::ScratchDir;
use crate::outputs::{OutputDir, OutputError, OutputFile};
use crate::report::Report;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub port: u16,
    /// Load, verify and measure (`Verify { measure: true }`), or not (`--no-kernel`).
    pub kernel: KernelUse,
    /// A machine that cannot load programs is an error (`SIMPLEBPF_REQUIRE_KERNEL=1`).
    pub kernel_required: bool,
    pub clang: ClangOptions,
    /// Write an object the checker did not prove equivalent (the report and the table say
    /// so loudly). Off by default: nothing unproven leaves the pipeline.
    pub allow_unproven: bool,
    /// The checker's resource budget (Z3 `rlimit` units) and its wall-clock safety net.
    pub budget: u64,
    pub timeout: Duration,
    /// Cancelled by Ctrl-C: every step stops and the build returns `Interrupted`.
    pub cancel: Cancel,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            port: DEFAULT_PORT,
            kernel: KernelUse::Verify { measure: true },
            kernel_required: false,
            clang: ClangOptions::default(),
            allow_unproven: false,
            budget: simplebpf_checker::DEFAULT_BUDGET,
            timeout: Duration::from_secs(600),
            cancel: Cancel::new(),
        }
    }
}

impl BuildOptions {
    /// The checker options of a build.
    pub fn checker(&self) -> simplebpf_checker::Options {
        simplebpf_checker::Options {
            port: self.port,
            budget: self.budget,
            timeout: self.timeout,
            program: None,
            cancel: self.cancel.clone(),
        }
    }

    /// The gate options of a build.
    pub fn gate(&self) -> GateOptions {
        GateOptions {
            clang: self.clang.clone(),
            port: self.port,
            kernel: self.kernel,
            kernel_required: self.kernel_required,
            require_proof: !self.allow_unproven,
            clock: kernel::monotonic_ns,
            cancel: self.cancel.clone(),
        }
    }
}

/// The service port when `--port` is not given.
pub const DEFAULT_PORT: u16 = 9000;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the policy has errors")]
    Input { diagnostics: Vec<Diagnostic> },
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("cannot create a scratch directory")]
    Scratch(#[source] std::io::Error),
}

/// Everything a build produced, in memory.
#[derive(Debug)]
pub struct Built {
    pub name: String,
    pub emitted: Emitted,
    pub gated: Gated,
    pub report: Report,
    /// Warnings of the front end (errors stop the build).
    pub warnings: Vec<Diagnostic>,
}

/// Builds a policy from its source bytes.
pub fn build(name: &str, source: &[u8], options: &BuildOptions) -> Result<Built, BuildError> {
    let analysis = simplebpf_dsl::analyze_bytes(source);
    let Some(program) = analysis.ir.as_ref().filter(|_| !analysis.has_errors()) else {
        return Err(BuildError::Input {
            diagnostics: analysis.diagnostics,
        });
    };
    let emitted = backend::emit(
        program,
        &backend::Options {
            port: options.port,
            name: name.to_string(),
            test_hooks: false,
        },
    )
    .map_err(|diagnostics| BuildError::Input { diagnostics })?;
    let mut built = build_emitted(name, program, emitted, options)?;
    built.warnings = analysis.diagnostics;
    Ok(built)
}

/// The rest of a build once the C exists: the rules backend's program through the gate.
/// Tests use it to push deliberately broken C through the same gate.
pub fn build_emitted(
    name: &str,
    program: &simplebpf_dsl::ir::Program,
    emitted: Emitted,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    let scratch = ScratchDir::new().map_err(BuildError::Scratch)?;
    let mut session = Session::new(program, options.checker());
    let candidate = Candidate {
        source: Source::C {
            text: emitted.c_source.clone(),
            file_name: format!("{name}.bpf.c"),
        },
        origin: Origin::Rules,
        program: Some(emitted.function.clone()),
    };
    let gated = simplebpf_optimizer::gate(
        candidate,
        Some(&mut session),
        &options.gate(),
        scratch.path(),
    )?;
    let report = Report::new(name, options, &gated);
    Ok(Built {
        name: name.to_string(),
        emitted,
        gated,
        report,
        warnings: Vec::new(),
    })
}

/// The clock `bpf_ktime_get_ns` reads, now.
pub fn monotonic_ns() -> u64 {
    kernel::monotonic_ns()
}

/// The three output files of a build.
#[derive(Debug, Clone)]
pub struct OutputPaths {
    pub c: PathBuf,
    pub object: PathBuf,
    pub report: PathBuf,
}

impl OutputPaths {
    pub fn new(dir: &OutputDir, name: &str) -> OutputPaths {
        OutputPaths {
            c: dir.join(&format!("{name}.bpf.c")),
            object: dir.join(&format!("{name}.bpf.o")),
            report: dir.join(&format!("{name}.report.json")),
        }
    }
}

/// Writes `<name>.bpf.c`, `<name>.bpf.o` and `<name>.report.json` into `dir`, all three or
/// none, never through a symlink, and never mixed with another build's (`outputs.rs`).
pub fn write_outputs(
    built: &Built,
    dir: &OutputDir,
    cancel: &Cancel,
) -> Result<OutputPaths, OutputError> {
    let paths = OutputPaths::new(dir, &built.name);
    let report = serde_json::to_string_pretty(&built.report.to_json(&paths))
        .expect("a report serialises")
        + "\n";
    let file_name = |path: &PathBuf| {
        path.file_name()
            .and_then(|name| name.to_str())
            .expect("named above")
            .to_string()
    };
    let names = [
        file_name(&paths.c),
        file_name(&paths.object),
        file_name(&paths.report),
    ];
    dir.commit(
        &[
            OutputFile {
                name: &names[0],
                bytes: built.emitted.c_source.as_bytes(),
            },
            OutputFile {
                name: &names[1],
                bytes: &built.gated.elf,
            },
            OutputFile {
                name: &names[2],
                bytes: report.as_bytes(),
            },
        ],
        cancel,
    )?;
    Ok(paths)
}
