//! The subcommands.

pub mod bench;
pub mod build;
pub mod check;
pub mod lint;
pub mod llm;
pub mod run;
pub mod stats;

/// How a command ended when it did not fail for an environment or usage reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The input has errors (they were printed), or the programs differ.
    InputErrors,
    /// The checker could not decide (timeout, an instruction or helper it does not model).
    Unknown,
    /// A signal stopped the work; nothing was written.
    Interrupted,
}

/// The service port's flag: 1 to 65535 (port 0 is no port).
pub fn port_parser() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..)
}

/// The checker's limits, shared by `build` and `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckerArgs {
    /// The checker's budget in Z3 resource units (`rlimit`): past it the verdict is
    /// "unknown", on a busy machine as on an idle one.
    #[arg(long, value_name = "UNITS", default_value_t = simplebpf_checker::DEFAULT_BUDGET, value_parser = clap::value_parser!(u64).range(1..))]
    pub budget: u64,
    /// A wall-clock safety net: a check still running after this long is "unknown".
    #[arg(long, value_name = "N", default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub timeout_ms: u64,
}

impl CheckerArgs {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }
}
