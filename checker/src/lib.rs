//! Z3 equivalence checker: proves BPF bytecode does what a policy's IR says, or gives a
//! counterexample (LANGUAGE.md §4.6). It reads only the IR and the BPF program model, so it
//! checks any object that follows the layout contract of §4.3: ours, an LLM's, or a
//! hand-written one.

pub mod explain;
pub mod filter;
mod integer;
mod interrupt;
mod numeral;
pub mod policy;
pub mod pretest;
pub mod query;
pub mod reference;
pub mod replay;
pub mod session;
mod solve;
pub mod symexec;
pub mod verdict;

pub use query::{Budget, DEFAULT_BUDGET, Options, assumptions};
pub use replay::{KernelReplay, kernel_replay};
pub use session::Session;
pub use verdict::{Counterexample, Verdict};
