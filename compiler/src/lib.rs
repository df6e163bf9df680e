//! IR to XDP C backends, exact float-to-integer rewriting, the clang driver, the BPF object model and kernel measurement.
//!
//! Not built yet: see the project's issues and `docs/design.md`.
