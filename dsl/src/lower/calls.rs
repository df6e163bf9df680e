//! Built-in functions (LANGUAGE.md §3.6) and the keyword built-ins `get`, `set`, `delete`,
//! `byte_size`, `size`.

use super::expr::opaque;
use super::*;
use crate::ast::{BuiltinOp, ExprKind as Ast};
use crate::ir::{Expr, ExprKind, MinMax, Missing, VecRef};

/// Every function the language knows, with its number of arguments.
pub const FUNCTIONS: [(&str, usize); 17] = [
    ("randomf", 2),
    ("current_time", 0),
    ("time_diff", 2),
    ("min", 2),
    ("max", 2),
    ("rpc_id", 0),
    ("get_rpc_header", 2),
    ("set_rpc_header", 3),
    ("get_metadata", 1),
    ("set_metadata", 2),
    ("encrypt", 2),
    ("decrypt", 2),
    ("get_backends", 1),
    ("random_choices", 2),
    ("get_load", 1),
    ("estimate_RIF_distribution", 1),
    ("quantile", 2),
];

/// A vector or map named as the first argument of a keyword built-in.
enum Container {
    Rpc,
    StateMap(StateId, Type, Type),
    Vec(VecRef, Type),
    /// A local whose type needs a wire schema or an unsupported built-in to know.
    Unknown,
    /// A name declared nowhere (already warned about).
    Undeclared(String),
    Other(Type),
}

impl Lowerer {
    pub(super) fn call(&mut self, func: &ast::Ident, args: &[ast::Expr], span: Span) -> Expr {
        let Some(&(name, arity)) = FUNCTIONS.iter().find(|(name, _)| *name == func.name) else {
            let mut diagnostic = Diagnostic::new(
                Code::UnknownFunction,
                func.span,
                format!("unknown function `{}`", func.name),
            )
            .with_label("not a built-in function");
            diagnostic = match closest(&func.name, FUNCTIONS.iter().map(|(name, _)| *name)) {
                Some(similar) => diagnostic.with_help(format!("did you mean `{similar}`?")),
                None => diagnostic.with_note(
                    "the language has no user-defined functions; the built-ins are listed in docs/language.md §3.6",
                ),
            };
            self.error(diagnostic);
            for arg in args {
                self.expr(arg);
            }
            return error_expr(span);
        };
        if args.len() != arity {
            self.error(
                Diagnostic::new(
                    Code::ArgumentCount,
                    span,
                    format!(
                        "`{name}` takes {arity} argument{}, but {} {} given",
                        if arity == 1 { "" } else { "s" },
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" }
                    ),
                )
                .with_label(format!(
                    "{} argument{}",
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                )),
            );
            for arg in args {
                self.expr(arg);
            }
            return error_expr(span);
        }
        let args: Vec<Expr> = args.iter().map(|arg| self.expr(arg)).collect();
        let mut args = args.into_iter();
        let mut next = || args.next().unwrap_or_else(|| error_expr(span));
        match name {
            "randomf" => {
                let lo = self.number_arg(next(), "randomf");
                let lo = self.coerce(lo, &Type::Float, "randomf");
                let hi = self.number_arg(next(), "randomf");
                let hi = self.coerce(hi, &Type::Float, "randomf");
                Expr {
                    kind: ExprKind::Randomf {
                        lo: Box::new(lo),
                        hi: Box::new(hi),
                    },
                    ty: Type::Float,
                    span,
                }
            }
            "current_time" => Expr {
                kind: ExprKind::Now,
                ty: Type::Instant,
                span,
            },
            "time_diff" => {
                let (a, b) = (next(), next());
                if a.ty == Type::Float || b.ty == Type::Float {
                    // Real elements keep a timestamp in a float state variable; AppNet's
                    // backends read it as seconds, and so do we.
                    self.error(
                        Diagnostic::new(Code::Coercion, span, "`time_diff` of a float")
                            .with_label("the float is read as seconds, the Instant as seconds since the clock's origin")
                            .with_help("declare timestamps as `Instant`"),
                    );
                    let a = self.coerce(a, &Type::Float, "time_diff");
                    let b = self.coerce(b, &Type::Float, "time_diff");
                    return Expr {
                        kind: ExprKind::Arith {
                            op: ir::ArithOp::Sub,
                            lhs: Box::new(a),
                            rhs: Box::new(b),
                        },
                        ty: Type::Float,
                        span,
                    };
                }
                let a = self.coerce(a, &Type::Instant, "time_diff");
                let b = self.coerce(b, &Type::Instant, "time_diff");
                Expr {
                    kind: ExprKind::TimeDiff(Box::new(a), Box::new(b)),
                    ty: Type::Float,
                    span,
                }
            }
            "min" | "max" => {
                let op = if name == "min" {
                    MinMax::Min
                } else {
                    MinMax::Max
                };
                self.min_max(op, next(), next(), span)
            }
            "rpc_id" => opaque(
                "rpc_id()",
                Missing::WireSchema,
                Vec::new(),
                Type::Uint,
                span,
            ),
            "get_rpc_header" | "set_rpc_header" => {
                let args: Vec<Expr> = std::iter::from_fn(|| Some(next())).take(arity).collect();
                let ty = if name == "get_rpc_header" {
                    Type::Unknown
                } else {
                    Type::Unit
                };
                opaque(&format!("{name}(..)"), Missing::WireSchema, args, ty, span)
            }
            _ => {
                let args: Vec<Expr> = std::iter::from_fn(|| Some(next())).take(arity).collect();
                let ty = match name {
                    "set_metadata" => Type::Unit,
                    "encrypt" | "decrypt" => Type::Str,
                    "get_backends" | "estimate_RIF_distribution" => {
                        Type::Vec(Box::new(Type::Unknown))
                    }
                    "random_choices" => args[0].ty.clone(),
                    "get_load" => Type::Pair(Box::new(Type::Unknown), Box::new(Type::Unknown)),
                    "quantile" => Type::Float,
                    _ => Type::Unknown,
                };
                opaque(&format!("{name}(..)"), Missing::NotYet, args, ty, span)
            }
        }
    }

    fn number_arg(&mut self, e: Expr, func: &str) -> Expr {
        if e.ty.is_numeric() || e.ty == Type::Unknown {
            return e;
        }
        self.coerce(e, &Type::Float, func)
    }

    fn min_max(&mut self, op: MinMax, a: Expr, b: Expr, span: Span) -> Expr {
        let name = if op == MinMax::Min { "min" } else { "max" };
        let (a, b, ty) = if a.ty == Type::Instant && b.ty == Type::Instant {
            (a, b, Type::Instant)
        } else {
            let mixes = |x: &Expr, y: &Expr| {
                x.ty.is_integer() && y.ty == Type::Float && !matches!(x.kind, ExprKind::Const(_))
            };
            if mixes(&a, &b) || mixes(&b, &a) {
                self.error(
                    Diagnostic::new(
                        Code::Coercion,
                        span,
                        format!("`{name}` mixes an integer and a float"),
                    )
                    .with_label("the integer is promoted to float exactly")
                    .with_help("make both arguments floats to say so"),
                );
            }
            self.unify_numeric(a, b, span, name)
        };
        Expr {
            kind: ExprKind::MinMax {
                op,
                lhs: Box::new(a),
                rhs: Box::new(b),
            },
            ty,
            span,
        }
    }

    fn container(&mut self, target: &ast::Ident) -> Container {
        let name = target.name.as_str();
        if self.is_rpc(name) {
            return Container::Rpc;
        }
        if let Some(id) = self.lookup_local(name) {
            return match self.local_type(id).clone() {
                Type::Vec(elem) => Container::Vec(VecRef::Local(id), *elem),
                Type::Unknown => Container::Unknown,
                other => Container::Other(other),
            };
        }
        if let Some(&id) = self.state_by_name.get(name) {
            return match self.state_type(id).clone() {
                Type::Map(key, value) => Container::StateMap(id, *key, *value),
                Type::Vec(elem) => Container::Vec(VecRef::State(id), *elem),
                other => Container::Other(other),
            };
        }
        // Reuse the undeclared-name warning of plain names.
        let _ = self.expr(&ast::Expr::new(Ast::Name(name.to_string()), target.span));
        Container::Undeclared(name.to_string())
    }

    /// `get`, `byte_size`, `size` (and `set`/`delete` used where a value is expected).
    pub(super) fn builtin_expr(
        &mut self,
        op: BuiltinOp,
        target: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
    ) -> Expr {
        if matches!(op, BuiltinOp::Set | BuiltinOp::Delete) {
            self.error(
                Diagnostic::new(
                    Code::TypeMismatch,
                    span,
                    format!("`{}(..)` has no value", op.as_str()),
                )
                .with_label("used as a value here")
                .with_help("call it as a statement on its own line"),
            );
            return error_expr(span);
        }
        let lowered: Vec<Expr> = args.iter().map(|arg| self.expr(arg)).collect();
        let container = self.container(target);
        match (op, container) {
            (BuiltinOp::ByteSize, Container::Rpc) => Expr {
                kind: ExprKind::PayloadLen,
                ty: Type::Int,
                span,
            },
            (BuiltinOp::Get, Container::Rpc) => {
                let construct = match args.first().map(|a| &a.kind) {
                    Some(Ast::Lit(crate::ast::Literal::Str(field))) => {
                        format!("get(rpc, '{field}')")
                    }
                    _ => "get(rpc, ..)".to_string(),
                };
                opaque(
                    &construct,
                    Missing::WireSchema,
                    lowered,
                    Type::Unknown,
                    span,
                )
            }
            (BuiltinOp::Get, Container::StateMap(map, key_ty, value_ty)) => {
                if lowered.len() != 1 {
                    return self.arg_count(op, 2, lowered.len() + 1, span);
                }
                let key = lowered
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| error_expr(span));
                let key = self.coerce(key, &key_ty, "the map's key");
                Expr {
                    kind: ExprKind::MapGet {
                        map,
                        key: Box::new(key),
                    },
                    ty: Type::Option(Box::new(value_ty)),
                    span,
                }
            }
            (BuiltinOp::Size, Container::Vec(vec, _)) => Expr {
                kind: ExprKind::VecSize(vec),
                ty: Type::Int,
                span,
            },
            (_, Container::Undeclared(name)) => opaque(
                &format!("the undeclared name `{name}`"),
                Missing::Meaning,
                lowered,
                Type::Unknown,
                span,
            ),
            (_, Container::Unknown) => opaque(
                &format!("{}({}, ..)", op.as_str(), target.name),
                Missing::NotYet,
                lowered,
                if op == BuiltinOp::Size {
                    Type::Int
                } else {
                    Type::Unknown
                },
                span,
            ),
            (op, container) => self.wrong_container(op, target, &container, span),
        }
    }

    fn arg_count(&mut self, op: BuiltinOp, expected: usize, found: usize, span: Span) -> Expr {
        self.error(
            Diagnostic::new(
                Code::ArgumentCount,
                span,
                format!(
                    "`{}` takes {expected} arguments here, but {found} were given",
                    op.as_str()
                ),
            )
            .with_label(format!("{found} arguments")),
        );
        error_expr(span)
    }

    fn wrong_container(
        &mut self,
        op: BuiltinOp,
        target: &ast::Ident,
        container: &Container,
        span: Span,
    ) -> Expr {
        let (code, what, help) = match (op, container) {
            (BuiltinOp::ByteSize, _) => (
                Code::TypeMismatch,
                "byte_size measures the RPC".to_string(),
                "write `byte_size(rpc, 'body')`".to_string(),
            ),
            (_, Container::Vec(..)) => (
                Code::VecUse,
                format!(
                    "`{}` on a vector is not supported in this version",
                    op.as_str()
                ),
                "vectors are append-only: `set(v, size(v), x)` appends and `size(v)` counts"
                    .to_string(),
            ),
            (BuiltinOp::Size, _) => (
                Code::TypeMismatch,
                "`size` counts the elements of a vector".to_string(),
                "maps have no size in this version".to_string(),
            ),
            (_, Container::Other(ty)) => (
                Code::TypeMismatch,
                format!(
                    "`{}` needs a map, but `{}` is {ty}",
                    op.as_str(),
                    target.name
                ),
                format!("declare `{}` as `Map<K, V>` under `state:`", target.name),
            ),
            _ => (
                Code::TypeMismatch,
                format!("`{}` cannot be used on `{}` here", op.as_str(), target.name),
                "see docs/language.md §3.4-§3.7".to_string(),
            ),
        };
        self.error(
            Diagnostic::new(code, target.span, what)
                .with_label(format!("`{}` used here", op.as_str()))
                .with_help(help),
        );
        error_expr(span)
    }

    /// `set(..)` and `delete(..)` as statements.
    pub(super) fn set_or_delete(
        &mut self,
        op: BuiltinOp,
        target: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
    ) -> Option<ir::Stmt> {
        let container = self.container(target);
        if op == BuiltinOp::Set
            && let Container::Vec(vec, elem) = &container
        {
            return self.vec_append(vec.clone(), elem, target, args, span);
        }
        let lowered: Vec<Expr> = args.iter().map(|arg| self.expr(arg)).collect();
        match (op, container) {
            (BuiltinOp::Set, Container::StateMap(map, key_ty, value_ty)) => {
                if lowered.len() != 2 {
                    self.arg_count(op, 3, lowered.len() + 1, span);
                    return None;
                }
                let mut lowered = lowered.into_iter();
                let key = lowered.next().unwrap_or_else(|| error_expr(span));
                let value = lowered.next().unwrap_or_else(|| error_expr(span));
                let key = self.coerce(key, &key_ty, "the map's key");
                let value = self.coerce(value, &value_ty, "the map's value");
                self.note_state_write(map);
                Some(ir::Stmt::MapSet {
                    map,
                    key,
                    value,
                    span,
                })
            }
            (BuiltinOp::Delete, Container::StateMap(map, key_ty, _)) => {
                let key = lowered
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| error_expr(span));
                let key = self.coerce(key, &key_ty, "the map's key");
                self.note_state_write(map);
                Some(ir::Stmt::MapDelete { map, key, span })
            }
            (BuiltinOp::Set, Container::Rpc) => Some(opaque_stmt(
                &format!("{}(rpc, ..)", op.as_str()),
                Missing::WireSchema,
                lowered,
                span,
            )),
            (_, Container::Undeclared(name)) => Some(opaque_stmt(
                &format!("the undeclared name `{name}`"),
                Missing::Meaning,
                lowered,
                span,
            )),
            (_, Container::Unknown) => Some(opaque_stmt(
                &format!("{}({}, ..)", op.as_str(), target.name),
                Missing::NotYet,
                lowered,
                span,
            )),
            (op, container) => {
                self.wrong_container(op, target, &container, span);
                None
            }
        }
    }

    /// The only vector write this version has: `set(v, size(v), x)` appends `x`.
    fn vec_append(
        &mut self,
        vec: VecRef,
        elem: &Type,
        target: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
    ) -> Option<ir::Stmt> {
        let is_append = matches!(
            args.first().map(|a| &a.unparen().kind),
            Some(Ast::Builtin { op: BuiltinOp::Size, target: inner, .. }) if inner.name == target.name
        ) && args.len() == 2;
        if !is_append {
            // AppNet's grammar accepts any `set` on a vector, and real elements index one.
            self.error(
                Diagnostic::new(
                    Code::NoMeaning,
                    span,
                    "vectors only support appending in this version",
                )
                .with_label("not an append; `run` and `build` refuse it")
                .with_help(format!(
                    "append with `set({0}, size({0}), value)`",
                    target.name
                )),
            );
            let lowered: Vec<Expr> = args.iter().map(|arg| self.expr(arg)).collect();
            return Some(opaque_stmt(
                &format!("set({}, ..) at an index", target.name),
                Missing::Meaning,
                lowered,
                span,
            ));
        }
        let value = self.expr(&args[1]);
        let value = self.coerce(value, elem, "the vector's element");
        if let VecRef::State(id) = vec {
            self.note_state_write(id);
        }
        Some(ir::Stmt::VecAppend { vec, value, span })
    }

    pub(super) fn note_state_write(&mut self, id: StateId) {
        if self.kind() != HandlerKind::Init {
            self.state[id.0 as usize].written_by_handlers = true;
        }
    }
}

pub(super) fn opaque_stmt(
    construct: &str,
    reason: Missing,
    args: Vec<Expr>,
    span: Span,
) -> ir::Stmt {
    ir::Stmt::Opaque {
        feature: ir::Feature {
            construct: construct.to_string(),
            reason,
        },
        args,
        body: Vec::new(),
        span,
    }
}
