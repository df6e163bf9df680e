//! IR to XDP C backends, exact float-to-integer rewriting, the clang driver, the BPF object
//! model and kernel measurement.
//!
//! Built so far: the reference RPC classifier of LANGUAGE.md §4.1 (`rpc_filter`), the exact
//! thresholds that replace `randomf` comparisons (`threshold`) and the pinned clang driver
//! (`clang`). The C backend, object model and kernel module come next.
//!
//! Architecture invariant: this crate knows nothing of Z3 or of the optimizer's search.

pub mod backend;
pub mod cancel;
pub mod clang;
pub mod contract;
pub mod kernel;
pub mod llm;
pub mod measure;
pub mod object_model;
pub mod rpc_filter;
pub mod state_io;
pub mod threshold;
