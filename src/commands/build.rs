//! `simplebpf build`: a policy to `<name>.bpf.c`, `<name>.bpf.o` and `<name>.report.json`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::kernel;
use simplebpf_optimizer::{KernelOutcome, KernelUse, Rejection};

use super::Outcome;
use super::llm::{BackendArg, LlmArgs};
use crate::backend::LockFailure;
use crate::output::{self, Format};
use crate::outputs::{OutputDir, OutputError};
use crate::pipeline::{self, BuildError, BuildOptions};
use crate::report;
use crate::source::SourceFile;
use crate::verdict;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// Where the three output files go (created if missing).
    #[arg(short = 'o', long = "out-dir", value_name = "DIR", default_value = ".")]
    pub out_dir: PathBuf,
    /// The UDP port the service listens on (1-65535): only datagrams to it are RPCs.
    #[arg(long, value_name = "N", default_value_t = pipeline::DEFAULT_PORT, value_parser = super::port_parser())]
    pub port: u16,
    /// Do not load the program: no verifier verdict, no kernel counts, no timing.
    #[arg(long)]
    pub no_kernel: bool,
    /// Write the object even if the checker does not prove it equivalent to the policy; the
    /// report and the table mark it UNPROVEN.
    #[arg(long)]
    pub allow_unproven: bool,
    #[command(flatten)]
    pub checker: super::CheckerArgs,
    /// Emit the rules backend's first program: no search for a cheaper one.
    #[arg(long)]
    pub no_optimize: bool,
    /// Seconds the optimizer may search for a cheaper proven program; variants not tried
    /// by then are counted in the report. 0 tries none, so that `--llm-optimize` starts
    /// from the first program.
    #[arg(long, value_name = "SECONDS", default_value_t = pipeline::DEFAULT_OPTIMIZE_BUDGET.as_secs(), value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub optimize_budget: u64,
    /// After the search, ask the LLM (--llm-url, --llm-model) for a cheaper program: it is
    /// shown the best proven C, what it costs and its instructions, and an answer is kept
    /// only if the gate proves it and it costs less. Rules backend only.
    #[arg(long, conflicts_with = "no_optimize")]
    pub llm_optimize: bool,
    /// Answers the LLM optimizer may give; each rejection (a counterexample, the verifier's
    /// log, "not cheaper") is the next prompt.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub optimize_rounds: u16,
    /// Who writes the C: `rules` (deterministic) or `llm` (an OpenAI-compatible model whose
    /// every answer is proven or discarded; see the LLM options).
    #[arg(long, value_enum, default_value_t, value_name = "WHO")]
    pub backend: BackendArg,
    #[command(flatten, next_help_heading = "LLM backend")]
    pub llm: LlmArgs,
    /// `text` for people, `json` for tools (the report, on stdout).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn build(args: &BuildArgs, cancel: &Cancel) -> anyhow::Result<Outcome> {
    let file = SourceFile::read(&args.policy)?;
    // A wrong -o is said before any work, not after compiling, proving and measuring.
    let out_dir = OutputDir::prepare(&args.out_dir)?;
    let name = policy_name(&args.policy);
    let options = BuildOptions {
        port: args.port,
        kernel: if args.no_kernel {
            KernelUse::Skip
        } else {
            KernelUse::Verify { measure: true }
        },
        kernel_required: kernel::kernel_required(),
        allow_unproven: args.allow_unproven,
        budget: args.checker.budget,
        timeout: args.checker.timeout(),
        cancel: cancel.clone(),
        optimize: (!args.no_optimize).then(|| Duration::from_secs(args.optimize_budget)),
        progress: (args.format == Format::Text && std::io::stderr().is_terminal())
            .then(|| std::sync::Arc::new(SearchLine) as _),
        ..BuildOptions::default()
    };
    let result = match args.backend {
        BackendArg::Rules if args.llm_optimize => build_llm_optimized(&name, &file, &options, args),
        BackendArg::Rules => pipeline::build(&name, &file.bytes, &options),
        BackendArg::Llm if args.llm_optimize => {
            anyhow::bail!(
                "--llm-optimize searches from the rules backend's program; the LLM backend's is kept as it is (use one or the other)"
            )
        }
        BackendArg::Llm => build_llm(&name, &file, &options, args),
    };
    if options.progress.is_some() {
        SearchLine::clear();
    }
    let generated = format!("the program generated for {}", file.name());
    let built = match result {
        Ok(built) => built,
        Err(BuildError::Input { diagnostics }) => {
            output::diagnostics(&file, &diagnostics, args.format);
            return Ok(Outcome::InputErrors);
        }
        Err(BuildError::Rejected(rejection)) => {
            return refused(&file, &generated, rejection, args, options.kernel_required);
        }
        Err(BuildError::Lock(LockFailure::Rejected { path, rejection })) => {
            let what = format!("the program in the lockfile {}", path.display());
            return refused(&file, &what, *rejection, args, options.kernel_required);
        }
        Err(BuildError::Lock(failure @ LockFailure::Screen { .. })) => {
            eprintln!("error: {failure}; nothing was written");
            return Ok(Outcome::InputErrors);
        }
        Err(BuildError::NoAnswer {
            rounds,
            ended_unknown,
        }) => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "error": "no accepted answer", "rounds": report::rounds_json(&rounds) })
                ),
                Format::Text => eprint!(
                    "error: no answer of the model was proven equivalent, and --fallback none; nothing was written\n{}",
                    rounds_text(&rounds)
                ),
            }
            return Ok(if ended_unknown {
                Outcome::Unknown
            } else {
                Outcome::InputErrors
            });
        }
        Err(err) => return Err(err.into()),
    };
    if let KernelOutcome::NotPermitted(reason) = &built.gated.kernel {
        eprintln!("note: {reason}; reporting static numbers only");
    }
    let backend = &built.report.backend;
    if backend.fallback {
        eprint!(
            "note: no answer of the model was proven equivalent; the rules backend's program is kept (--fallback rules)\n{}",
            rounds_text(&backend.rounds)
        );
    }
    if let crate::backend::LockUse::Stale { path, why } = &backend.lock {
        eprintln!(
            "note: the lockfile {} is stale ({why}); the model was asked",
            path.display()
        );
    }
    output::diagnostics(&file, &built.warnings, args.format);
    let paths = match pipeline::write_outputs(&built, &out_dir, cancel) {
        Ok(paths) => paths,
        Err(OutputError::Interrupted) => return Ok(Outcome::Interrupted),
        Err(err) => return Err(err.into()),
    };
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{}", built.report.to_json(&paths))?,
        Format::Text => {
            write!(
                stdout,
                "{}",
                report::table(&[report::Row {
                    name: built.report.program.clone(),
                    elf: built.report.elf_insns,
                    kernel: built.report.numbers(),
                    proven: Some(built.report.proven()),
                    backend: Some(built.report.backend.label()),
                    jited_before: built.report.jited_before(),
                }])
            )?;
            for path in [&paths.c, &paths.object, &paths.report] {
                writeln!(stdout, "wrote {}", path.display())?;
            }
            if let Some((path, _)) = &built.lock {
                writeln!(stdout, "wrote {}", path.display())?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// The optimizer's progress as one line on standard error (a terminal), redrawn per variant
/// and cleared when the build is done.
#[derive(Debug)]
struct SearchLine;

impl SearchLine {
    fn clear() {
        eprint!("\r\x1b[K");
    }
}

impl simplebpf_optimizer::search::ProgressSink for SearchLine {
    fn progress(&self, progress: &simplebpf_optimizer::search::Progress) {
        let best = match progress.best.jited {
            Some(jited) => format!("{jited} JIT instructions"),
            None => format!("{} BPF instructions", progress.best.elf),
        };
        eprint!(
            "\r\x1b[Koptimizing: variant {} of {}, best so far {best}",
            progress.done + 1,
            progress.total
        );
    }
}

/// The LLM backend's build: the client (when this simplebpf has one) and the progress line.
fn build_llm(
    name: &str,
    file: &SourceFile,
    options: &pipeline::BuildOptions,
    args: &BuildArgs,
) -> Result<pipeline::Built, BuildError> {
    let settings = args.llm.settings(&args.policy);
    #[cfg(feature = "llm")]
    let client = args.llm.client();
    #[cfg(feature = "llm")]
    let model = client
        .as_ref()
        .map(|client| client as &dyn simplebpf_compiler::llm::Model)
        .map_err(Clone::clone);
    #[cfg(not(feature = "llm"))]
    let model = Err(
        "this simplebpf was built without the feature `llm` (no HTTP client): only --locked builds are possible"
            .to_string(),
    );
    let model = if settings.lock == crate::backend::LockMode::Locked {
        Err("--locked never asks the model".to_string())
    } else {
        model
    };
    super::llm::build_with_progress(name, &file.bytes, options, &settings, model)
}

/// The rules backend's build with the LLM optimizer after the search.
#[cfg(feature = "llm")]
fn build_llm_optimized(
    name: &str,
    file: &SourceFile,
    options: &pipeline::BuildOptions,
    args: &BuildArgs,
) -> Result<pipeline::Built, BuildError> {
    let client = args.llm.client().map_err(BuildError::NoModel)?;
    let conversations = simplebpf_optimizer::llm::Conversations {
        rounds: usize::from(args.optimize_rounds),
        samples: 1,
    };
    let mut progress = super::llm::Progress::new(conversations);
    pipeline::build_with_llm_optimizer(
        name,
        &file.bytes,
        options,
        Some(pipeline::LlmOptimizer {
            model: &client,
            url: args.llm.llm_url.clone(),
            model_name: args.llm.llm_model.clone(),
            rounds: conversations.rounds,
            observer: &mut progress,
        }),
    )
}

#[cfg(not(feature = "llm"))]
fn build_llm_optimized(
    _: &str,
    _: &SourceFile,
    _: &pipeline::BuildOptions,
    _: &BuildArgs,
) -> Result<pipeline::Built, BuildError> {
    Err(BuildError::NoModel(
        "this simplebpf was built without the feature `llm` (no HTTP client): --llm-optimize is not possible".to_string(),
    ))
}

/// A line per answer: what became of it.
fn rounds_text(rounds: &[simplebpf_optimizer::llm::Round]) -> String {
    let mut out = String::new();
    for round in rounds {
        let detail = round.outcome.detail();
        let first = detail.lines().next().unwrap_or_default();
        out.push_str(&format!(
            "  sample {} round {}: {} ({} ms){}{}\n",
            round.sample,
            round.round,
            round.outcome.name(),
            round.ms,
            if first.is_empty() { "" } else { ": " },
            first
        ));
    }
    out
}

/// What a build the gate refused prints, and how it ends. `what` names the program.
fn refused(
    file: &SourceFile,
    what: &str,
    rejection: Rejection,
    args: &BuildArgs,
    kernel_required: bool,
) -> anyhow::Result<Outcome> {
    match rejection {
        Rejection::Interrupted => Ok(Outcome::Interrupted),
        Rejection::Verifier { log } => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "error": "verifier", "verifier": { "accepted": false, "log": log } })
                ),
                Format::Text => eprintln!(
                    "error: the kernel verifier rejected {what}; nothing was written\n{}",
                    report::verifier_log_tail(&log)
                ),
            }
            Ok(Outcome::InputErrors)
        }
        Rejection::NotEquivalent { verdict, compiled } => {
            let program = simplebpf_dsl::analyze_bytes(&file.bytes)
                .ir
                .expect("the build got past the front end");
            let described = verdict::describe(
                &program,
                &verdict,
                args.port,
                Some(&compiled),
                kernel_required,
            )?;
            unproven(what, &described, args.format);
            Ok(Outcome::InputErrors)
        }
        Rejection::Unknown { reason } => {
            let unknown = simplebpf_checker::Verdict::Unknown { reason };
            let described = verdict::Described {
                text: simplebpf_checker::explain::text(&unknown, None, None),
                json: verdict::json(&unknown, None, None),
            };
            unproven(what, &described, args.format);
            Ok(Outcome::Unknown)
        }
        Rejection::Clang(err) => {
            anyhow::bail!("cannot compile {what}: {err}")
        }
        Rejection::Contract(err) => {
            anyhow::bail!("{what} does not follow the state contract: {err}")
        }
        other => Err(other.into()),
    }
}

fn unproven(what: &str, described: &verdict::Described, format: Format) {
    match format {
        Format::Json => println!("{}", described.json),
        Format::Text => eprint!(
            "error: {what} is not proven equivalent to the policy; nothing was written (--allow-unproven writes it anyway)\n{}",
            described.text
        ),
    }
}

/// The file name without `.appnet`: the stem of the outputs and the C function.
pub fn policy_name(path: &std::path::Path) -> String {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| !stem.is_empty())
        .unwrap_or("policy")
        .to_string()
}
