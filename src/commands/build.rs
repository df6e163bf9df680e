//! `simplebpf build`: a policy to `<name>.bpf.c`, `<name>.bpf.o` and `<name>.report.json`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::kernel;
use simplebpf_optimizer::{KernelOutcome, KernelUse, Rejection};

use super::Outcome;
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
        ..BuildOptions::default()
    };
    let built = match pipeline::build(&name, &file.bytes, &options) {
        Ok(built) => built,
        Err(BuildError::Input { diagnostics }) => {
            output::diagnostics(&file, &diagnostics, args.format);
            return Ok(Outcome::InputErrors);
        }
        Err(BuildError::Rejected(rejection)) => {
            return refused(&file, rejection, args, options.kernel_required);
        }
        Err(BuildError::Scratch(err)) => return Err(err.into()),
    };
    if let KernelOutcome::NotPermitted(reason) = &built.gated.kernel {
        eprintln!("note: {reason}; reporting static numbers only");
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
                }])
            )?;
            for path in [&paths.c, &paths.object, &paths.report] {
                writeln!(stdout, "wrote {}", path.display())?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// What a build the gate refused prints, and how it ends.
fn refused(
    file: &SourceFile,
    rejection: Rejection,
    args: &BuildArgs,
    kernel_required: bool,
) -> anyhow::Result<Outcome> {
    let name = file.name();
    match rejection {
        Rejection::Interrupted => Ok(Outcome::Interrupted),
        Rejection::Verifier { log } => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "error": "verifier", "verifier": { "accepted": false, "log": log } })
                ),
                Format::Text => eprintln!(
                    "error: the kernel verifier rejected the program generated for {name}; nothing was written\n{}",
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
            unproven(&described, args.format);
            Ok(Outcome::InputErrors)
        }
        Rejection::Unknown { reason } => {
            let unknown = simplebpf_checker::Verdict::Unknown { reason };
            let described = verdict::Described {
                text: simplebpf_checker::explain::text(&unknown, None, None),
                json: verdict::json(&unknown, None, None),
            };
            unproven(&described, args.format);
            Ok(Outcome::Unknown)
        }
        Rejection::Clang(err) => {
            anyhow::bail!("cannot compile the program generated for {name}: {err}")
        }
        Rejection::Contract(err) => anyhow::bail!(
            "internal error: the program generated for {name} does not follow the state contract: {err}"
        ),
        other => Err(other.into()),
    }
}

fn unproven(described: &verdict::Described, format: Format) {
    match format {
        Format::Json => println!("{}", described.json),
        Format::Text => eprint!(
            "error: the generated program is not proven equivalent to the policy; nothing was written (--allow-unproven writes it anyway)\n{}",
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
