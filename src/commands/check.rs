//! `simplebpf check`: is this BPF program equivalent to this policy? (LANGUAGE.md §4.6)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use simplebpf_checker::{Session, Verdict};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::{ClangOptions, Cpu, OptLevel};
use simplebpf_compiler::kernel;
use simplebpf_optimizer::{Candidate, GateOptions, KernelUse, Origin, Rejection, Source};

use super::Outcome;
use crate::interrupt::ScratchDir;
use crate::output::{self, Format};
use crate::pipeline;
use crate::source::{MAX_PROGRAM_BYTES, SourceFile, read_capped};
use crate::verdict;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// The program: XDP C (compiled with the pinned clang) or a BPF object.
    #[arg(value_name = "PROGRAM")]
    pub program: PathBuf,
    /// The UDP port the program serves (1-65535).
    #[arg(long, value_name = "N", default_value_t = pipeline::DEFAULT_PORT, value_parser = super::port_parser())]
    pub port: u16,
    /// The XDP program to check, by name, when the object has several.
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// Another include directory for a C program (its own directory always is one).
    #[arg(short = 'I', value_name = "DIR")]
    pub include: Vec<PathBuf>,
    /// A macro for a C program: `NAME` or `NAME=VALUE`.
    #[arg(short = 'D', value_name = "NAME[=VALUE]")]
    pub define: Vec<String>,
    /// The BPF instruction set a C program is compiled for.
    #[arg(long, value_enum, default_value_t = CpuArg::V3)]
    pub mcpu: CpuArg,
    /// clang's optimisation level for a C program: 1, 2, 3 or s.
    #[arg(short = 'O', value_enum, default_value_t = OptArg::Two, value_name = "LEVEL")]
    pub opt: OptArg,
    #[command(flatten)]
    pub checker: super::CheckerArgs,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `--mcpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuArg {
    V2,
    V3,
    V4,
}

impl CpuArg {
    fn cpu(self) -> Cpu {
        match self {
            CpuArg::V2 => Cpu::V2,
            CpuArg::V3 => Cpu::V3,
            CpuArg::V4 => Cpu::V4,
        }
    }
}

/// `-O`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptArg {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
    #[value(name = "3")]
    Three,
    #[value(name = "s")]
    Size,
}

impl OptArg {
    fn level(self) -> OptLevel {
        match self {
            OptArg::One => OptLevel::O1,
            OptArg::Two => OptLevel::O2,
            OptArg::Three => OptLevel::O3,
            OptArg::Size => OptLevel::Os,
        }
    }
}

/// Exit status of an "unknown" verdict.
pub const UNKNOWN: u8 = 3;

pub fn check(args: &CheckArgs, cancel: &Cancel) -> anyhow::Result<Outcome> {
    let file = SourceFile::read(&args.policy)?;
    let analysis = simplebpf_dsl::analyze_bytes(&file.bytes);
    let Some(program) = analysis.ir.as_ref().filter(|_| !analysis.has_errors()) else {
        output::diagnostics(&file, &analysis.diagnostics, args.format);
        return Ok(Outcome::InputErrors);
    };
    let source = program_source(&args.program)?;
    let mut session = Session::new(
        program,
        simplebpf_checker::Options {
            port: args.port,
            budget: args.checker.budget,
            timeout: args.checker.timeout(),
            program: None,
            cancel: cancel.clone(),
        },
    );
    let kernel_required = kernel::kernel_required();
    let options = GateOptions {
        clang: clang_options(args),
        port: args.port,
        // `check` decides equivalence; `build` and `stats` also ask the verifier.
        kernel: KernelUse::Skip,
        kernel_required,
        require_proof: false,
        cancel: cancel.clone(),
        ..GateOptions::default()
    };
    let scratch = ScratchDir::new().context("cannot create a scratch directory")?;
    let candidate = Candidate {
        source,
        origin: Origin::File(args.program.clone()),
        program: args.prog.clone(),
    };
    let what = || args.program.display().to_string();
    let gated =
        match simplebpf_optimizer::gate(candidate, Some(&mut session), &options, scratch.path()) {
            Ok(gated) => gated,
            Err(Rejection::Interrupted) => return Ok(Outcome::Interrupted),
            Err(Rejection::Clang(err)) => {
                return Err(err).with_context(|| format!("cannot compile {}", what()));
            }
            Err(Rejection::Contract(err)) => {
                // The object does not say where the policy's state is: no proof is possible.
                let unknown = Verdict::Unknown {
                    reason: err.to_string(),
                };
                print(
                    &simplebpf_checker::explain::text(&unknown, None, None),
                    &verdict::json(&unknown, None, None),
                    args.format,
                )?;
                return Ok(Outcome::Unknown);
            }
            Err(err) => return Err(err).with_context(what),
        };
    let verdict = gated.verdict.clone().expect("a policy was given");
    let described = verdict::describe(program, &verdict, args.port, Some(&gated), kernel_required)?;
    print(&described.text, &described.json, args.format)?;
    Ok(match verdict {
        Verdict::Equivalent { .. } => Outcome::Success,
        Verdict::NotEquivalent { .. } | Verdict::Race { .. } => Outcome::InputErrors,
        Verdict::Unknown { .. } => Outcome::Unknown,
    })
}

fn print(text: &str, json: &serde_json::Value, format: Format) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(stdout, "{json}")?,
        Format::Text => write!(stdout, "{text}")?,
    }
    Ok(())
}

/// The program as a candidate: a `.c` file compiled where it is (its own headers found
/// beside it, clang's messages citing it as given), anything else read as an object.
fn program_source(path: &Path) -> anyhow::Result<Source> {
    let bytes = read_capped(path, MAX_PROGRAM_BYTES, "program")?;
    Ok(if path.extension().is_some_and(|ext| ext == "c") {
        Source::CFile(path.to_path_buf())
    } else {
        Source::Elf(bytes)
    })
}

/// The pinned clang, with the C file's own directory, `-I` and `-D` as a compiler takes them.
fn clang_options(args: &CheckArgs) -> ClangOptions {
    let own = args
        .program
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut include_dirs = vec![own];
    include_dirs.extend(args.include.iter().cloned());
    ClangOptions {
        cpu: args.mcpu.cpu(),
        opt_level: args.opt.level(),
        include_dirs,
        defines: args.define.clone(),
        ..ClangOptions::default()
    }
}
