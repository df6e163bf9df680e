//! Z3 equivalence checker: proves BPF bytecode does what a policy's IR says, or gives a counterexample.
//!
//! Not built yet: see the project's issues and `docs/design.md`.
