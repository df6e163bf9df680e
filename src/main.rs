//! The `simplebpf` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use simplebpf::commands::{self, Outcome};
use simplebpf::interrupt;
use simplebpf::output::{self, ColorChoice};

/// Compile AppNet element policies into proven XDP eBPF programs.
#[derive(Debug, Parser)]
#[command(name = "simplebpf", version, about, long_about = None)]
struct Cli {
    /// When to colour diagnostics: `auto` (on a terminal, unless NO_COLOR is set), `always`,
    /// `never`.
    #[arg(long, value_enum, default_value_t, global = true, value_name = "WHEN")]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check policies; print every diagnostic and a summary.
    ///
    /// Exit status: 0 no file has an error (warnings allowed), 1 a file has errors,
    /// 2 a file cannot be read or a usage error, 130/143 interrupted.
    ///
    /// Example:
    ///   simplebpf lint examples/fault.appnet examples/ratelimit.appnet
    #[command(verbatim_doc_comment)]
    Lint(commands::lint::LintArgs),
    /// Run a policy's `req` handler once in the reference interpreter.
    ///
    /// `init` runs first at --load-time, then --state overrides apply, then `req` runs at
    /// --time. Draws are consumed in order, by `init` first.
    /// Exit status: 0 ran, 1 the policy has errors (or uses what cannot run), 2 usage error
    /// (unreadable file, bad option value, too few draws), 130/143 interrupted.
    ///
    /// Example:
    ///   simplebpf run examples/fault.appnet --payload-len 100 --draws 4080218931 --time 1000000000
    #[command(verbatim_doc_comment)]
    Run(commands::run::RunArgs),
    /// Compile a policy to XDP: C, a BPF object the kernel verifier accepts, and a report.
    ///
    /// Writes DIR/<name>.bpf.c, DIR/<name>.bpf.o and DIR/<name>.report.json, all or none.
    /// With --backend llm a model writes the C; only an answer the checker proves is kept,
    /// saved in <policy>.lock, else the rules backend's program (--fallback rules).
    /// Exit status: 0 built and proven, 1 the policy has errors, the verifier rejected the
    /// program or it is not equivalent (counterexample), no answer was proven with
    /// --fallback none, or the lockfile's program is refused, 2 a usage or environment error
    /// (no clang, a bad -o, no kernel with SIMPLEBPF_REQUIRE_KERNEL=1, no --llm-url or
    /// --llm-model, --locked with a missing or stale lock), 3 the checker could not decide,
    /// 130/143 interrupted (nothing written).
    ///
    /// Examples:
    ///   simplebpf build examples/fault.appnet -o out --port 9000
    ///   simplebpf build examples/fault.appnet --backend llm --llm-url http://127.0.0.1:11434/v1 --llm-model qwen2.5-coder:7b
    #[command(verbatim_doc_comment)]
    Build(commands::build::BuildArgs),
    /// Measure any XDP object: ELF, xlated and JIT instruction counts, verdict, ns/packet.
    ///
    /// Exit status: 0 measured, 1 the verifier rejected the program, 2 a usage or
    /// environment error (unreadable object, no XDP program or several without --prog),
    /// 130/143 interrupted.
    ///
    /// Example:
    ///   simplebpf stats out/fault.bpf.o
    #[command(verbatim_doc_comment)]
    Stats(commands::stats::StatsArgs),
    /// Build every example (or the policies given) and print one table: ELF, xlated and JIT
    /// instructions and ns/packet before → after the optimizer, checker and build ms, and the
    /// SimpleBPF paper's numbers beside its three programs.
    ///
    /// Exit status: 0 every policy built, 1 a policy has errors, 2 a usage or environment
    /// error (a policy cannot be read or built), 130/143 interrupted.
    ///
    /// Example:
    ///   simplebpf bench --format markdown
    #[command(verbatim_doc_comment)]
    Bench(commands::bench::BenchArgs),
    /// Prove that a BPF program does what a policy says, or show a counterexample.
    ///
    /// PROGRAM is XDP C (compiled with the pinned clang-19) or a BPF object that follows the
    /// layout contract (state variables as globals and maps of the same names).
    /// Exit status: 0 equivalent, 1 not equivalent (or the policy has errors), 2 usage or
    /// environment error (no XDP program, several without --prog, C that does not compile),
    /// 3 unknown (timeout, an instruction or helper outside the model), 130/143 interrupted.
    ///
    /// Example:
    ///   simplebpf check examples/fault.appnet out/fault.bpf.o
    #[command(verbatim_doc_comment)]
    Check(commands::check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::set_color(cli.color, std::env::var("NO_COLOR").ok().as_deref());
    let cancel = match interrupt::install() {
        Ok(cancel) => cancel,
        Err(error) => {
            eprintln!("error: cannot handle signals: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Lint(args) => commands::lint::lint(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Build(args) => commands::build::build(&args, &cancel),
        Command::Stats(args) => commands::stats::stats(&args, &cancel),
        Command::Bench(args) => commands::bench::bench(&args, &cancel),
        Command::Check(args) => commands::check::check(&args, &cancel),
    };
    let interrupted = || {
        eprintln!("interrupted");
        ExitCode::from(interrupt::exit_status().unwrap_or(130))
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::InputErrors) => ExitCode::from(1),
        Ok(Outcome::Unknown) => ExitCode::from(commands::check::UNKNOWN),
        Ok(Outcome::Interrupted) => interrupted(),
        // A step that failed because it was stopped says so, not what the stop broke.
        Err(_) if cancel.is_cancelled() => interrupted(),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
