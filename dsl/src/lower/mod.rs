//! Checking and lowering: syntax tree → typed IR, with the static checks of LANGUAGE.md §2.
//!
//! One pass does both, so that the rules that type an expression are written once. Following
//! rust-analyzer, it never stops at the first problem: it reports every diagnostic it finds
//! and gives the IR only when none is an error.

mod calls;
mod expr;
mod precedence;
mod stmt;
mod types;

use std::collections::HashMap;

use crate::ast::{self, HandlerKind};
use crate::diagnostic::{Code, Diagnostic, has_errors};
use crate::ir::{self, LocalId, StateId, Type};
use crate::span::Span;

/// The result of lowering: the IR when there was no error, and every diagnostic found.
#[derive(Debug)]
pub struct Lowered {
    pub program: Option<ir::Program>,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn lower(program: &ast::Program) -> Lowered {
    let mut lowerer = Lowerer::default();
    lowerer.state(&program.state);
    let init = lowerer.handler(&program.init);
    let req = lowerer.handler(&program.req);
    let resp = lowerer.handler(&program.resp);
    let mut diagnostics = lowerer.diagnostics;
    diagnostics.sort_by_key(|d| (d.span, d.code.as_str()));
    let program = (!has_errors(&diagnostics)).then_some(ir::Program {
        state: lowerer.state,
        init,
        req,
        resp,
    });
    Lowered {
        program,
        diagnostics,
    }
}

#[derive(Default)]
struct Lowerer {
    state: Vec<ir::StateVar>,
    state_by_name: HashMap<String, StateId>,
    diagnostics: Vec<Diagnostic>,
    /// The handler being lowered.
    cx: HandlerCx,
}

#[derive(Default)]
struct HandlerCx {
    kind: Option<HandlerKind>,
    rpc: Option<String>,
    locals: Vec<ir::Local>,
    /// The local each name refers to now (a binding of another type shadows).
    by_name: HashMap<String, LocalId>,
}

impl Lowerer {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn handler(&mut self, handler: &ast::Handler) -> ir::Handler {
        let rpc = self.params(handler);
        self.cx = HandlerCx {
            kind: Some(handler.kind),
            rpc: rpc.clone(),
            ..HandlerCx::default()
        };
        let (body, _) = self.block(&handler.body);
        let cx = std::mem::take(&mut self.cx);
        ir::Handler {
            kind: handler.kind,
            rpc,
            locals: cx.locals,
            body,
        }
    }

    /// Checks a handler's parameters and returns the name of its RPC parameter.
    fn params(&mut self, handler: &ast::Handler) -> Option<String> {
        let params = handler.params.as_deref().unwrap_or_default();
        match handler.kind {
            HandlerKind::Init => {
                // AppNet accepts and ignores them (ping_elements/circuitbreaker.appnet).
                if let Some(first) = params.first() {
                    self.error(
                        Diagnostic::new(
                            Code::IgnoredParams,
                            first.span,
                            "the parameters of `init` are ignored",
                        )
                        .with_label("there is no RPC when the program loads")
                        .with_help("write `init():`"),
                    );
                }
                None
            }
            HandlerKind::Req | HandlerKind::Resp => {
                if let Some(extra) = params.get(1) {
                    self.error(
                        Diagnostic::new(
                            Code::HandlerParams,
                            extra.span,
                            format!("`{}` takes one parameter, the RPC", handler.kind.as_str()),
                        )
                        .with_label("extra parameter")
                        .with_help(format!("write `{}(rpc):`", handler.kind.as_str())),
                    );
                }
                params.first().map(|p| p.name.clone())
            }
        }
    }

    fn kind(&self) -> HandlerKind {
        self.cx.kind.unwrap_or(HandlerKind::Init)
    }

    fn is_rpc(&self, name: &str) -> bool {
        self.cx.rpc.as_deref() == Some(name)
    }

    fn lookup_local(&self, name: &str) -> Option<LocalId> {
        self.cx.by_name.get(name).copied()
    }

    fn local_type(&self, id: LocalId) -> &Type {
        &self.cx.locals[id.0 as usize].ty
    }

    /// Declares a new local. A name declared before gets a fresh local that shadows it; its
    /// text form is suffixed (`x.1`) so that the IR stays unambiguous.
    fn declare_local(&mut self, name: &str, ty: Type) -> LocalId {
        let id = LocalId(self.cx.locals.len() as u32);
        let taken = self
            .cx
            .locals
            .iter()
            .filter(|l| base_name(&l.name) == name)
            .count();
        let display = if taken == 0 {
            name.to_string()
        } else {
            format!("{name}.{taken}")
        };
        self.cx.locals.push(ir::Local { name: display, ty });
        self.cx.by_name.insert(name.to_string(), id);
        id
    }

    fn state_type(&self, id: StateId) -> &Type {
        &self.state[id.0 as usize].ty
    }

    /// Names a user could have meant, for "did you mean" help.
    fn similar_name(&self, name: &str) -> Option<String> {
        let candidates = self
            .cx
            .by_name
            .keys()
            .chain(self.state_by_name.keys())
            .map(String::as_str)
            .chain(["inf", "inf_f"])
            .chain(self.cx.rpc.as_deref());
        closest(name, candidates)
    }
}

fn base_name(display: &str) -> &str {
    display.split('.').next().unwrap_or(display)
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// A placeholder for an expression that had an error; it never reaches a finished IR.
fn error_expr(span: Span) -> ir::Expr {
    ir::Expr {
        kind: ir::ExprKind::Opaque {
            feature: ir::Feature {
                construct: "error".to_string(),
                reason: ir::Missing::NotYet,
            },
            args: Vec::new(),
        },
        ty: Type::Unknown,
        span,
    }
}
