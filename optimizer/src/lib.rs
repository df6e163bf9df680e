//! Candidates and the gate (ARCHITECTURE.md, "The unit of work"): every program — the rules
//! backend's, a person's file, an LLM's answer, an optimizer's variant — is judged by one
//! function, `gate::gate`, and a search keeps the cheapest that passes.
//!
//! Architecture invariant: this crate knows nothing of the command line, files it does not
//! compile, or terminals.

pub mod gate;
pub mod llm;
pub mod rewrite;
pub mod search;

pub use gate::{
    Candidate, Cost, GateOptions, Gated, KernelOutcome, KernelUse, Origin, Reason, Rejection,
    Source, gate,
};
