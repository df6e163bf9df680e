//! The AppNet element language: tokens, layout, grammar, syntax tree, checks, diagnostics,
//! typed IR, lowering and the reference interpreter.
//!
//! Architecture invariant: this crate knows nothing of C, clang, BPF, Z3, JSON, terminals or
//! files. It takes source text and returns data.

pub mod ast;
pub mod decimal;
pub mod diagnostic;
pub mod ir;
pub mod layout;
pub mod lower;
pub mod parser;
pub mod print;
pub mod render;
pub mod span;
pub mod token;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use span::Span;
