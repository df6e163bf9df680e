//! `simplebpf build`: a policy to `<name>.bpf.c`, `<name>.bpf.o` and `<name>.report.json`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use simplebpf_compiler::cancel::Cancel;

use super::Outcome;
use crate::output::{self, Format};
use crate::outputs::{OutputDir, OutputError};
use crate::pipeline::{self, BuildError, BuildOptions, KernelUse};
use crate::report::{self, KernelSection};
use crate::source::SourceFile;

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
    /// Per solver query of the checker; past it the verdict is "unknown".
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
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
            KernelUse::Use
        },
        allow_unproven: args.allow_unproven,
        checker_timeout: std::time::Duration::from_millis(args.timeout_ms),
        cancel: cancel.clone(),
        ..BuildOptions::default()
    };
    let built = match pipeline::build(&name, &file.bytes, &options) {
        Ok(built) => built,
        Err(BuildError::Interrupted) => return Ok(Outcome::Interrupted),
        Err(BuildError::Input { diagnostics }) => {
            output::diagnostics(&file, &diagnostics, args.format);
            return Ok(Outcome::InputErrors);
        }
        Err(BuildError::Verifier { log }) => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "error": "verifier", "verifier": { "accepted": false, "log": log } })
                ),
                Format::Text => eprintln!(
                    "error: the kernel verifier rejected the program generated for {}; nothing was written\n{}",
                    file.name(),
                    report::verifier_log_tail(&log)
                ),
            }
            return Ok(Outcome::InputErrors);
        }
        Err(BuildError::Unproven { verdict }) => {
            let analysis = simplebpf_dsl::analyze_bytes(&file.bytes);
            let program = analysis
                .ir
                .as_ref()
                .expect("the build got past the front end");
            let (text, json) = super::check::describe(program, &verdict, args.port, None)?;
            match args.format {
                Format::Json => println!("{json}"),
                Format::Text => eprint!(
                    "error: the generated program is not proven equivalent to the policy; nothing was written (--allow-unproven writes it anyway)\n{text}"
                ),
            }
            return Ok(match *verdict {
                simplebpf_checker::Verdict::Unknown { .. } => Outcome::Unknown,
                _ => Outcome::InputErrors,
            });
        }
        Err(BuildError::Clang(err)) => {
            anyhow::bail!(
                "cannot compile the program generated for {}: {err}",
                file.name()
            )
        }
        Err(other) => return Err(other.into()),
    };
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
            let numbers = match &built.report.kernel {
                KernelSection::Measured(n) => Some(n),
                KernelSection::Skipped(_) => None,
            };
            write!(
                stdout,
                "{}",
                report::table(&[report::Row {
                    name: built.report.program.clone(),
                    elf: built.report.elf_insns,
                    kernel: numbers,
                    proven: Some(built.report.checker.proven()),
                }])
            )?;
            for path in [&paths.c, &paths.object, &paths.report] {
                writeln!(stdout, "wrote {}", path.display())?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// The file name without `.appnet`: the stem of the outputs and the C function.
pub fn policy_name(path: &std::path::Path) -> String {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| !stem.is_empty())
        .unwrap_or("policy")
        .to_string()
}
