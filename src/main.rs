//! The `simplebpf` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use simplebpf::commands::{self, Outcome};

/// Compile AppNet element policies into proven XDP eBPF programs.
#[derive(Debug, Parser)]
#[command(name = "simplebpf", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check policies; print every diagnostic.
    ///
    /// Exit status: 0 when no file has an error (warnings allowed), 1 when one has,
    /// 2 when a file cannot be read.
    ///
    /// Example:
    ///   simplebpf lint examples/fault.appnet examples/ratelimit.appnet
    #[command(verbatim_doc_comment)]
    Lint(commands::lint::LintArgs),
    /// Run a policy's `req` handler once in the reference interpreter.
    ///
    /// `init` runs first at --load-time, then --state overrides apply, then `req` runs at
    /// --time. Draws are consumed in order, by `init` first.
    ///
    /// Example:
    ///   simplebpf run examples/fault.appnet --payload-len 100 --draws 4080218931 --time 1000000000
    #[command(verbatim_doc_comment)]
    Run(commands::run::RunArgs),
    /// Compile a policy to XDP: C, a BPF object the kernel verifier accepts, and a report.
    ///
    /// Writes DIR/<name>.bpf.c, DIR/<name>.bpf.o and DIR/<name>.report.json, all or none.
    /// Exit status: 0 built, 1 the policy has errors or the verifier rejected the program,
    /// 2 an environment error (no clang, no kernel with SIMPLEBPF_REQUIRE_KERNEL=1).
    ///
    /// Example:
    ///   simplebpf build examples/fault.appnet -o out --port 9000
    #[command(verbatim_doc_comment)]
    Build(commands::build::BuildArgs),
    /// Measure any XDP object: ELF, xlated and JIT instruction counts, verdict, ns/packet.
    ///
    /// Example:
    ///   simplebpf stats out/fault.bpf.o
    #[command(verbatim_doc_comment)]
    Stats(commands::stats::StatsArgs),
    /// Prove that a BPF program does what a policy says, or show a counterexample.
    ///
    /// PROGRAM is XDP C (compiled with the pinned clang-19) or a BPF object that follows the
    /// layout contract (state variables as globals and maps of the same names).
    /// Exit status: 0 equivalent, 1 not equivalent (or the policy has errors), 2 usage or
    /// environment error, 3 unknown (timeout, an instruction or helper outside the model).
    ///
    /// Example:
    ///   simplebpf check examples/fault.appnet out/fault.bpf.o
    #[command(verbatim_doc_comment)]
    Check(commands::check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => commands::lint::lint(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Build(args) => commands::build::build(&args),
        Command::Stats(args) => commands::stats::stats(&args),
        Command::Check(args) => commands::check::check(&args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::InputErrors) => ExitCode::from(1),
        Ok(Outcome::Unknown) => ExitCode::from(commands::check::UNKNOWN),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
