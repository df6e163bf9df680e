//! simplebpf: the pipeline and the command line over the crates `simplebpf-dsl` and
//! `simplebpf-compiler` (and, next, `simplebpf-checker`).
//!
//! Only this package knows files, terminals and JSON; the crates below take and return data.

pub mod backend;
pub mod builder;
pub mod commands;
pub mod interrupt;
pub mod json;
pub mod lock;
pub mod output;
pub mod outputs;
pub mod pipeline;
pub mod report;
pub mod source;
pub mod verdict;

pub use builder::{Backend, BuildScriptError, Builder};
