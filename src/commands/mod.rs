//! The subcommands.

pub mod lint;
pub mod run;

/// How a command ended when it did not fail for an environment or usage reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The input has errors; they were printed.
    InputErrors,
}
