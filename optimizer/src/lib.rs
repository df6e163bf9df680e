//! Search for cheaper BPF programs that pass the checker and the kernel verifier.
//!
//! Not built yet: see the project's issues and `docs/design.md`.
