//! The build (ARCHITECTURE.md "Data flow"): policy → IR → C from the rules backend or an LLM
//! → the gate (clang, object model, contract, verifier, checker, measurements) → report.
//! Used by `simplebpf build` and by build scripts; it returns data, and writes files only
//! through `write_outputs` (`outputs.rs`).

use std::path::PathBuf;
use std::time::Duration;

use simplebpf_checker::Session;
use simplebpf_compiler::backend::{self, Emitted, LockPlace};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::ClangOptions;
use simplebpf_compiler::kernel;
use simplebpf_compiler::llm::{Model, prompt, screen};
use simplebpf_dsl::Diagnostic;
use simplebpf_dsl::ir::Program;
use simplebpf_optimizer::llm::{self, Observer, Round, Task};
use simplebpf_optimizer::search;
use simplebpf_optimizer::{Candidate, GateOptions, Gated, KernelUse, Origin, Rejection, Source};

use crate::backend::{BackendReport, Fallback, Kind, LlmSettings, LockFailure, LockMode, LockUse};
use crate::interrupt::ScratchDir;
use crate::lock::{self, Lock};
use crate::outputs::{OutputDir, OutputError, OutputFile, sha256_hex};
use crate::report::{LlmOptimizerReport, OptimizerReport, Report};

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
    /// The optimizer's time budget; `None` emits the rules backend's first program
    /// (`--no-optimize`).
    pub optimize: Option<Duration>,
    /// Where the optimizer may put the lock: every place by default; only the array map for
    /// a program aya 0.14 will load (it gives global data no BTF).
    pub lock_places: Vec<LockPlace>,
    /// Who hears the optimizer's progress (`build` on a terminal).
    pub progress: Option<std::sync::Arc<dyn search::ProgressSink>>,
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
            optimize: Some(DEFAULT_OPTIMIZE_BUDGET),
            lock_places: LockPlace::ALL.to_vec(),
            progress: None,
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

/// The optimizer's budget when `--optimize-budget` is not given: enough for every variant of
/// every example on this project's machine (docs/optimizer.md), a bound for the rest.
pub const DEFAULT_OPTIMIZE_BUDGET: Duration = Duration::from_secs(10);

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
    #[error(transparent)]
    Lock(#[from] LockFailure),
    /// The model must be asked and cannot be: why.
    #[error("{0}")]
    NoModel(String),
    /// No answer was accepted and `--fallback none`.
    #[error("no answer of the model was accepted ({} answers); nothing was written", rounds.len())]
    NoAnswer {
        rounds: Vec<Round>,
        /// The last answer's verdict was "unknown".
        ended_unknown: bool,
    },
}

/// Everything a build produced, in memory.
#[derive(Debug)]
pub struct Built {
    pub name: String,
    /// The C of the kept program (written as `<name>.bpf.c`).
    pub c_source: String,
    pub gated: Gated,
    pub report: Report,
    /// Warnings of the front end (errors stop the build).
    pub warnings: Vec<Diagnostic>,
    /// A lock to write with the outputs (a new accepted answer), and where.
    pub lock: Option<(PathBuf, Lock)>,
}

/// Builds a policy from its source bytes with the rules backend.
pub fn build(name: &str, source: &[u8], options: &BuildOptions) -> Result<Built, BuildError> {
    build_with_llm_optimizer(name, source, options, None)
}

/// The LLM optimizer (`--llm-optimize`): after the search, the model is shown the winner and
/// asked for a cheaper program, up to `rounds` answers.
pub struct LlmOptimizer<'a> {
    pub model: &'a dyn Model,
    pub url: Option<String>,
    pub model_name: Option<String>,
    pub rounds: usize,
    pub observer: &'a mut dyn Observer,
}

impl std::fmt::Debug for LlmOptimizer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmOptimizer")
            .field("url", &self.url)
            .field("model_name", &self.model_name)
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

/// `build`, with the LLM optimizer as one more proposer after the search when given.
pub fn build_with_llm_optimizer(
    name: &str,
    source: &[u8],
    options: &BuildOptions,
    llm: Option<LlmOptimizer<'_>>,
) -> Result<Built, BuildError> {
    let (program, warnings) = analyze(source)?;
    let emitted = emit(name, &program, options)?;
    let scratch = ScratchDir::new().map_err(BuildError::Scratch)?;
    let mut session = Session::new(&program, options.checker());
    let policy = Policy {
        name,
        source: &String::from_utf8_lossy(source),
        program: &program,
    };
    let mut built = build_rules(&policy, emitted, options, &mut session, &scratch, llm)?;
    built.warnings = warnings;
    Ok(built)
}

/// The policy a build is about.
#[derive(Debug, Clone, Copy)]
struct Policy<'a> {
    name: &'a str,
    /// As the user wrote it (the LLM optimizer's prompt quotes it).
    source: &'a str,
    program: &'a Program,
}

/// The policy's IR and the front end's warnings, or its errors.
fn analyze(source: &[u8]) -> Result<(Program, Vec<Diagnostic>), BuildError> {
    let analysis = simplebpf_dsl::analyze_bytes(source);
    match analysis.ir {
        Some(program) if !analysis.has_errors() => Ok((program, analysis.diagnostics)),
        _ => Err(BuildError::Input {
            diagnostics: analysis.diagnostics,
        }),
    }
}

fn emit(name: &str, program: &Program, options: &BuildOptions) -> Result<Emitted, BuildError> {
    backend::emit(program, &backend_options(name, options))
        .map_err(|diagnostics| BuildError::Input { diagnostics })
}

/// The rules backend's options of a build: its first program, before any search.
fn backend_options(name: &str, options: &BuildOptions) -> backend::Options {
    backend::Options {
        port: options.port,
        name: name.to_string(),
        test_hooks: false,
        strategy: Default::default(),
    }
}

/// What the LLM backend needs beyond its settings: the model (none when this simplebpf has
/// no HTTP client, or it must not be asked: `why`), and who hears the progress.
pub struct LlmRun<'a> {
    pub settings: &'a LlmSettings,
    pub model: Result<&'a dyn Model, String>,
    pub observer: &'a mut dyn Observer,
}

impl std::fmt::Debug for LlmRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmRun")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a policy with the LLM backend: the lock's program when it is fresh (judged by the
/// gate like any candidate), else the model's conversations, else the fallback.
pub fn build_llm(
    name: &str,
    source: &[u8],
    options: &BuildOptions,
    run: LlmRun<'_>,
) -> Result<Built, BuildError> {
    let (program, warnings) = analyze(source)?;
    // The rules backend's program is the fallback, and a policy it cannot lower is one the
    // checker cannot judge either: said before the model is asked.
    let emitted = emit(name, &program, options)?;
    let scratch = ScratchDir::new().map_err(BuildError::Scratch)?;
    let mut session = Session::new(&program, options.checker());
    let text = String::from_utf8_lossy(source);
    let policy = Policy {
        name,
        source: &text,
        program: &program,
    };
    let settings = run.settings;
    let key = lock::Key {
        policy_sha256: sha256_hex(source),
        port: options.port,
        prompt_sha256: prompt::templates_sha256(),
    };
    let mut backend = BackendReport {
        kind: Kind::Llm,
        fallback: false,
        url: settings.url.clone(),
        model: settings.model.clone(),
        prompt_sha256: Some(key.prompt_sha256.clone()),
        lock: LockUse::None,
        rounds: Vec::new(),
    };
    let path = &settings.lock_path;
    let existing = Lock::read(path).map_err(LockFailure::from)?;
    let fresh = match (&existing, settings.lock) {
        (_, LockMode::Update) => None,
        (None, LockMode::Locked) => return Err(LockFailure::Missing(path.clone()).into()),
        (None, LockMode::Use) => None,
        (Some(lock), mode) => match lock.stale(&key) {
            None => Some(lock),
            Some(why) if mode == LockMode::Locked => {
                return Err(LockFailure::Stale {
                    path: path.clone(),
                    why,
                }
                .into());
            }
            Some(why) => {
                backend.lock = LockUse::Stale {
                    path: path.clone(),
                    why,
                };
                None
            }
        },
    };
    let gate_options = options.gate();
    if let Some(lock) = fresh {
        let gated = gate_lock(lock, path, name, &mut session, &gate_options, &scratch)?;
        backend.model = Some(lock.model.clone());
        backend.lock = LockUse::Used(path.clone());
        return Ok(finish(name, options, gated, backend, warnings, None));
    }
    let model = run.model.map_err(BuildError::NoModel)?;
    let task = Task {
        goal: llm::Goal::Write,
        source: policy.source,
        program: &program,
        name,
        gate: &gate_options,
        kernel_required: options.kernel_required,
    };
    let produced = llm::produce(
        model,
        &task,
        &mut session,
        settings.conversations,
        scratch.path(),
        run.observer,
    )?;
    match produced.accepted {
        Some(gated) => {
            backend.rounds = produced.rounds;
            backend.lock = LockUse::Written(path.clone());
            let new_lock = Lock {
                format: lock::FORMAT,
                simplebpf: env!("CARGO_PKG_VERSION").to_string(),
                policy_sha256: key.policy_sha256,
                port: key.port,
                prompt_sha256: key.prompt_sha256,
                model: settings.model.clone().unwrap_or_default(),
                c: gated.c_source.clone().unwrap_or_default(),
                object_sha256: sha256_hex(&gated.elf),
            };
            Ok(finish(
                name,
                options,
                gated,
                backend,
                warnings,
                Some((path.clone(), new_lock)),
            ))
        }
        None if settings.fallback == Fallback::None => Err(BuildError::NoAnswer {
            ended_unknown: produced.ended_unknown(),
            rounds: produced.rounds,
        }),
        None => {
            let mut built = build_rules(&policy, emitted, options, &mut session, &scratch, None)?;
            backend.kind = Kind::Rules;
            backend.fallback = true;
            backend.rounds = produced.rounds;
            built.report.backend = backend;
            built.warnings = warnings;
            Ok(built)
        }
    }
}

/// A lock's program through the screen and the gate.
fn gate_lock(
    lock: &Lock,
    path: &std::path::Path,
    name: &str,
    session: &mut Session,
    options: &GateOptions,
    scratch: &ScratchDir,
) -> Result<Gated, BuildError> {
    screen::screen(&lock.c).map_err(|error| LockFailure::Screen {
        path: path.to_path_buf(),
        error,
    })?;
    let options = options.for_untrusted();
    let candidate = Candidate {
        source: Source::C {
            text: lock.c.clone(),
            file_name: format!("{name}.c"),
        },
        origin: Origin::File(path.to_path_buf()),
        program: None,
    };
    simplebpf_optimizer::gate(candidate, Some(session), &options, scratch.path()).map_err(
        |rejection| match rejection.reason() {
            // The machine's failure (no clang, no kernel, an interruption), not the lock's.
            None => BuildError::Rejected(rejection),
            Some(_) => LockFailure::Rejected {
                path: path.to_path_buf(),
                rejection: Box::new(rejection),
            }
            .into(),
        },
    )
}

fn finish(
    name: &str,
    options: &BuildOptions,
    gated: Gated,
    backend: BackendReport,
    warnings: Vec<Diagnostic>,
    lock: Option<(PathBuf, Lock)>,
) -> Built {
    let mut report = Report::new(name, options, &gated);
    report.backend = backend;
    report.optimizer =
        Err("the model's program is kept as it is: the search varies the rules backend's");
    Built {
        name: name.to_string(),
        c_source: gated.c_source.clone().unwrap_or_default(),
        gated,
        report,
        warnings,
        lock,
    }
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
    let policy = Policy {
        name,
        source: "",
        program,
    };
    build_rules(&policy, emitted, options, &mut session, &scratch, None)
}

/// `build_emitted` in a session and scratch directory the caller already has (the LLM
/// backend's fallback: the policy's encoding and the verdicts so far are kept).
fn build_rules(
    policy: &Policy<'_>,
    emitted: Emitted,
    options: &BuildOptions,
    session: &mut Session,
    scratch: &ScratchDir,
    llm: Option<LlmOptimizer<'_>>,
) -> Result<Built, BuildError> {
    let (name, program) = (policy.name, policy.program);
    let candidate = Candidate {
        source: Source::C {
            text: emitted.c_source.clone(),
            file_name: format!("{name}.bpf.c"),
        },
        origin: Origin::Rules,
        program: Some(emitted.function.clone()),
    };
    let gate_options = options.gate();
    let first = simplebpf_optimizer::gate(candidate, Some(session), &gate_options, scratch.path())?;
    let proven = matches!(
        first.verdict,
        Some(simplebpf_checker::Verdict::Equivalent { .. })
    );
    let (gated, optimizer) = match options.optimize {
        // Only from a proven program: --allow-unproven writes what it has, unsearched.
        Some(_) if !proven => (first, Err("the first program is not proven")),
        Some(budget) => {
            let searched = search::search(
                &search::Search {
                    program,
                    backend: &backend_options(name, options),
                    gate: &gate_options,
                    budget,
                    takes_lock: emitted.layout.lock,
                    lock_places: &options.lock_places,
                    progress: options.progress.as_deref(),
                },
                first,
                session,
                scratch.path(),
            )?;
            let mut optimizer = OptimizerReport::new(&searched);
            let mut winner = searched.winner;
            if let Some(llm) = llm {
                let task = Task {
                    goal: llm::Goal::Cheaper { best: &winner },
                    source: policy.source,
                    program,
                    name,
                    gate: &gate_options,
                    kernel_required: options.kernel_required,
                };
                let conversations = llm::Conversations {
                    rounds: llm.rounds,
                    samples: 1,
                };
                let produced = llm::produce(
                    llm.model,
                    &task,
                    session,
                    conversations,
                    scratch.path(),
                    llm.observer,
                )?;
                if let Some(gated) = produced.accepted {
                    if let Some(round) = produced.rounds.last() {
                        optimizer.winner = format!("llm round {}", round.round);
                    }
                    winner = gated;
                }
                optimizer.llm = Some(LlmOptimizerReport {
                    url: llm.url,
                    model: llm.model_name,
                    rounds: produced.rounds,
                });
            }
            (winner, Ok(optimizer))
        }
        None => (first, Err("--no-optimize")),
    };
    let mut report = Report::new(name, options, &gated);
    report.optimizer = optimizer;
    let c_source = gated.c_source.clone().unwrap_or(emitted.c_source);
    Ok(Built {
        name: name.to_string(),
        c_source,
        gated,
        report,
        warnings: Vec::new(),
        lock: None,
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
    write_outputs_with(built, dir, &[], cancel)
}

/// `write_outputs`, with more files of the same build in the same all-or-none set (a build
/// script's Rust module).
pub fn write_outputs_with(
    built: &Built,
    dir: &OutputDir,
    more: &[OutputFile<'_>],
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
    let mut files = vec![
        OutputFile {
            name: &names[0],
            bytes: built.c_source.as_bytes(),
        },
        OutputFile {
            name: &names[1],
            bytes: &built.gated.elf,
        },
        OutputFile {
            name: &names[2],
            bytes: report.as_bytes(),
        },
    ];
    files.extend_from_slice(more);
    dir.commit(&files, cancel)?;
    if let Some((path, lock)) = &built.lock {
        // After the outputs: a lock is only ever written for a program that was kept.
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = OutputDir::prepare(dir.unwrap_or(std::path::Path::new(".")))?;
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| OutputError::NotADirectory { path: path.clone() })?;
        dir.commit(
            &[OutputFile {
                name,
                bytes: &lock.to_bytes(),
            }],
            cancel,
        )?;
    }
    Ok(paths)
}
