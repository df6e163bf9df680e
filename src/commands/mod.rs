//! The subcommands.

pub mod build;
pub mod check;
pub mod lint;
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
