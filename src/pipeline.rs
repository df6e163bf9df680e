//! The build pipeline (ARCHITECTURE.md "Data flow"): policy → IR → C → clang → object model
//! → kernel verifier and measurement → report. Used by `simplebpf build` and by build
//! scripts; it returns data and writes files only through `write_outputs`, atomically.

use std::path::PathBuf;
use std::time::Duration;

use simplebpf_checker::Verdict;

use simplebpf_compiler::backend::{self, Emitted};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::{self, ClangError, ClangOptions, Source};
use simplebpf_compiler::contract::{self, Contract, ContractError};
use simplebpf_compiler::kernel::{self, KernelError, LoadedProgram};
use simplebpf_compiler::measure::{self, KernelNumbers};
use simplebpf_compiler::object_model::{BpfObject, ObjectError};
use simplebpf_compiler::state_io::{self, StateError};
use simplebpf_dsl::Diagnostic;
use simplebpf_dsl::interp;

use crate::interrupt::ScratchDir;
use crate::outputs::{OutputDir, OutputError, OutputFile};
use crate::report::{CheckerSection, KernelSection, Report};

/// Whether to use the kernel for the verifier verdict and measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelUse {
    /// Load, verify and measure; if the machine cannot load programs, say so and continue
    /// with static numbers, unless `SIMPLEBPF_REQUIRE_KERNEL=1`.
    Use,
    /// `--no-kernel`: static numbers only.
    Skip,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub port: u16,
    pub kernel: KernelUse,
    pub clang: ClangOptions,
    /// A test build (draws and time from globals); never written by `simplebpf build`, and
    /// never checked (its draws are not the policy's).
    pub test_hooks: bool,
    /// Write an object the checker did not prove equivalent (the report and the table say
    /// so loudly). Off by default: nothing unproven leaves the pipeline.
    pub allow_unproven: bool,
    /// Per solver query; past it the verdict is "unknown".
    pub checker_timeout: Duration,
    /// Cancelled by Ctrl-C: every step stops and the build returns `Interrupted`.
    pub cancel: Cancel,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            port: DEFAULT_PORT,
            kernel: KernelUse::Use,
            clang: ClangOptions::default(),
            test_hooks: false,
            allow_unproven: false,
            checker_timeout: Duration::from_secs(20),
            cancel: Cancel::new(),
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
    Clang(#[from] ClangError),
    #[error("the compiled object cannot be read")]
    Object(#[from] ObjectError),
    #[error("the compiled object does not follow the state contract")]
    Contract(#[from] ContractError),
    #[error("the kernel verifier rejected the generated program")]
    Verifier { log: String },
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("the policy's initial state cannot be written into the program")]
    State(#[from] StateError),
    #[error("cannot create a scratch directory")]
    Scratch(#[source] std::io::Error),
    #[error("the generated program is not proven equivalent to the policy")]
    Unproven { verdict: Box<Verdict> },
    #[error("interrupted")]
    Interrupted,
}

impl From<simplebpf_compiler::cancel::Interrupted> for BuildError {
    fn from(_: simplebpf_compiler::cancel::Interrupted) -> BuildError {
        BuildError::Interrupted
    }
}

/// Everything a build produced, in memory.
#[derive(Debug)]
pub struct Built {
    pub name: String,
    pub emitted: Emitted,
    pub elf: Vec<u8>,
    pub object: BpfObject,
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
            test_hooks: options.test_hooks,
        },
    )
    .map_err(|diagnostics| BuildError::Input { diagnostics })?;
    let mut built = build_emitted(name, program, emitted, options)?;
    built.warnings = analysis.diagnostics;
    Ok(built)
}

/// The rest of a build once the C exists: clang, the object model, the kernel, the report.
/// Tests use it to push deliberately broken C through the same gates.
pub fn build_emitted(
    name: &str,
    program: &simplebpf_dsl::ir::Program,
    emitted: Emitted,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    let cancel = &options.cancel;
    cancel.check()?;
    let scratch = ScratchDir::new().map_err(BuildError::Scratch)?;
    let file_name = format!("{name}.bpf.c");
    let source = Source::Text {
        text: &emitted.c_source,
        file_name: &file_name,
    };
    let elf = match clang::compile_source(source, scratch.path(), &options.clang, cancel) {
        Err(ClangError::Interrupted) => return Err(BuildError::Interrupted),
        other => other?,
    };
    drop(scratch);
    let object = BpfObject::parse(&elf)?;
    let elf_insns = object
        .xdp_program(Some(&emitted.function))?
        .elf_instruction_count();
    let contract = contract::read(program, &object)?;
    cancel.check()?;

    let checker = if options.test_hooks {
        CheckerSection::NotRun("a test build reads draws and time from globals".to_string())
    } else {
        let verdict = simplebpf_checker::check_object(
            program,
            &elf,
            &object,
            &simplebpf_checker::Options {
                port: options.port,
                timeout: options.checker_timeout,
                program: Some(emitted.function.clone()),
                cancel: cancel.clone(),
            },
        )?;
        match verdict {
            Verdict::Equivalent { .. } => CheckerSection::Checked(verdict),
            _ if options.allow_unproven => CheckerSection::Checked(verdict),
            _ => {
                return Err(BuildError::Unproven {
                    verdict: Box::new(verdict),
                });
            }
        }
    };

    cancel.check()?;
    let kernel = match options.kernel {
        KernelUse::Skip => KernelSection::skipped("--no-kernel"),
        KernelUse::Use => {
            match load_and_measure(program, &emitted, &contract, &elf, options.port) {
                Ok((_, numbers)) => KernelSection::measured(numbers),
                Err(BuildError::Kernel(err))
                    if err.is_missing_capability() && !kernel::kernel_required() =>
                {
                    eprintln!("note: {err}; reporting static numbers only");
                    KernelSection::skipped(&err.to_string())
                }
                Err(err) => return Err(err),
            }
        }
    };
    cancel.check()?;
    let report = Report::new(
        name, options, &emitted, &contract, &elf, elf_insns, kernel, checker,
    );
    Ok(Built {
        name: name.to_string(),
        emitted,
        elf,
        object,
        report,
        warnings: Vec::new(),
    })
}

/// Loads the object as a loader would (running `init` at load time), then measures it.
pub fn load_and_measure(
    program: &simplebpf_dsl::ir::Program,
    emitted: &Emitted,
    contract: &Contract,
    elf: &[u8],
    port: u16,
) -> Result<(LoadedProgram, KernelNumbers), BuildError> {
    let loaded = match LoadedProgram::load(elf, Some(&emitted.function)) {
        Ok(loaded) => loaded,
        Err(KernelError::Rejected { log }) => return Err(BuildError::Verifier { log }),
        Err(err) => return Err(err.into()),
    };
    let initial = interp::load(program, &[], monotonic_ns()).map_err(|err| {
        BuildError::State(StateError::Missing(format!(
            "init failed at load time: {err}"
        )))
    })?;
    state_io::write_state(&loaded, contract, &initial.state)?;
    let numbers = measure::measure(&loaded, port)?;
    Ok((loaded, numbers))
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
                bytes: &built.elf,
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
