//! The AppNet element language: tokens, layout, grammar, syntax tree, checks, diagnostics,
//! typed IR, lowering and the reference interpreter.
//!
//! Architecture invariant: this crate knows nothing of C, clang, BPF, Z3, JSON, terminals or
//! files. It takes source text and returns data.

pub mod ast;
pub mod decimal;
pub mod diagnostic;
pub mod interp;
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

use diagnostic::has_errors;

/// Everything the front end learned about one source file.
#[derive(Debug)]
pub struct Analysis {
    pub ast: Option<ast::Program>,
    /// The IR, when the program has no errors.
    pub ir: Option<ir::Program>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        has_errors(&self.diagnostics)
    }
}

/// Parses and checks a policy given as bytes; input that is not UTF-8 is an error at the
/// first bad byte.
pub fn analyze_bytes(bytes: &[u8]) -> Analysis {
    match std::str::from_utf8(bytes) {
        Ok(src) => analyze(src),
        Err(error) => {
            let at = error.valid_up_to();
            Analysis {
                ast: None,
                ir: None,
                diagnostics: vec![
                    Diagnostic::new(
                        Code::NotUtf8,
                        Span::new(at, at),
                        "the file is not UTF-8 text",
                    )
                    .with_label(format!("invalid UTF-8 at byte {at}"))
                    .with_help("policies are UTF-8 text files"),
                ],
            }
        }
    }
}

/// Parses and checks a policy: what `lint` reports.
pub fn analyze(src: &str) -> Analysis {
    let ast = match parser::parse(src) {
        Ok(ast) => ast,
        Err(diagnostics) => {
            return Analysis {
                ast: None,
                ir: None,
                diagnostics,
            };
        }
    };
    let lowered = lower::lower(&ast);
    Analysis {
        ast: Some(ast),
        ir: lowered.program,
        diagnostics: lowered.diagnostics,
    }
}

/// The errors that stop a checked program from running: each construct `lint` accepted but
/// no target can execute (LANGUAGE.md §3.6, §3.7).
pub fn refusals(program: &ir::Program) -> Vec<Diagnostic> {
    program
        .opaque_uses()
        .into_iter()
        .map(|(span, feature)| {
            let (code, message, help) = match feature.reason {
                ir::Missing::WireSchema => (
                    Code::NeedsWireSchema,
                    format!("{} needs a wire schema", feature.construct),
                    "RPC fields, headers and ids need a schema that says where they are in a packet; this version has none",
                ),
                ir::Missing::NotYet => (
                    Code::Unsupported,
                    format!("{} is not supported in this version", feature.construct),
                    "only state, randomf, current_time, time_diff, min, max, byte_size, maps and vector appends run",
                ),
                ir::Missing::Meaning => (
                    Code::Meaningless,
                    format!("{} has no meaning that can run", feature.construct),
                    "`lint` accepts it because AppNet's grammar does; fix the warning it shows",
                ),
            };
            Diagnostic::new(code, span, message)
                .with_label("cannot run")
                .with_help(help)
        })
        .collect()
}
