//! Expressions: names, literals, operators, and the rules that type them.

use num_rational::BigRational;

use super::*;
use crate::ast::{BinOp, ExprKind as Ast, Literal};
use crate::decimal;
use crate::ir::{ArithOp, CmpOp, Const, Expr, ExprKind};

impl Lowerer {
    pub(super) fn expr(&mut self, e: &ast::Expr) -> Expr {
        self.expr_in(e, false)
    }

    /// `in_chain`: `e` is an unparenthesised operand of a binary operator, so the operator
    /// chain it belongs to was already checked for AppNet's flat reading.
    fn expr_in(&mut self, e: &ast::Expr, in_chain: bool) -> Expr {
        match &e.kind {
            Ast::Name(name) => self.name(name, e.span),
            Ast::Lit(lit) => self.literal(lit, e.span),
            Ast::Paren(inner) => self.expr_in(inner, false),
            Ast::Pair(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let ty = Type::Pair(Box::new(a.ty.clone()), Box::new(b.ty.clone()));
                self.value_check(&a);
                self.value_check(&b);
                Expr {
                    kind: ExprKind::Pair(Box::new(a), Box::new(b)),
                    ty,
                    span: e.span,
                }
            }
            Ast::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                if !in_chain && let Some(warning) = precedence::flat_reading(e) {
                    self.error(warning);
                }
                let lhs = self.expr_in(lhs, true);
                let rhs = self.expr_in(rhs, true);
                self.binary(*op, *op_span, lhs, rhs, e.span)
            }
            Ast::Builtin { op, target, args } => self.builtin_expr(*op, target, args, e.span),
            Ast::Call { func, args } => self.call(func, args, e.span),
        }
    }

    fn name(&mut self, name: &str, span: Span) -> Expr {
        if let Some(id) = self.lookup_local(name) {
            let ty = self.local_type(id).clone();
            return Expr {
                kind: ExprKind::Local(id),
                ty,
                span,
            };
        }
        if let Some(&id) = self.state_by_name.get(name) {
            let ty = self.state_type(id).clone();
            return Expr {
                kind: ExprKind::State(id),
                ty,
                span,
            };
        }
        match name {
            "inf" => return constant(Const::Int(i64::MAX), span),
            "inf_f" => return constant(Const::Float(decimal::largest_float()), span),
            _ => {}
        }
        if self.is_rpc(name) {
            return opaque(
                "the RPC",
                ir::Missing::WireSchema,
                Vec::new(),
                Type::Rpc,
                span,
            );
        }
        // AppNet's grammar accepts undeclared names (real elements use them), so this is a
        // warning; the name stays opaque and `run`/`build` refuse it.
        let mut diagnostic =
            Diagnostic::new(Code::UndeclaredName, span, format!("unknown name `{name}`"))
                .with_label("never declared")
                .with_note("`run` and `build` refuse a program that reads an undeclared name");
        diagnostic = match self.similar_name(name) {
            Some(similar) => diagnostic.with_help(format!("did you mean `{similar}`?")),
            None => diagnostic.with_help(
                "declare state under `state:`; a local is declared by assigning it before use",
            ),
        };
        self.error(diagnostic);
        opaque(
            &format!("the undeclared name `{name}`"),
            ir::Missing::Meaning,
            Vec::new(),
            Type::Unknown,
            span,
        )
    }

    fn literal(&mut self, lit: &Literal, span: Span) -> Expr {
        let value = match lit {
            Literal::Int(digits) => match digits.parse::<u64>() {
                Ok(v) if v <= i64::MAX as u64 => Const::Int(v as i64),
                Ok(v) => Const::Uint(v),
                Err(_) => {
                    self.error(
                        Diagnostic::new(
                            Code::IntegerRange,
                            span,
                            "integer literal does not fit in 64 bits",
                        )
                        .with_label("too large")
                        .with_help("the largest integer is 18446744073709551615 (uint)"),
                    );
                    return error_expr(span);
                }
            },
            Literal::Float(text) => match decimal::parse_float(text) {
                Ok(value) => Const::Float(value),
                Err(reason) => {
                    self.error(
                        Diagnostic::new(Code::InvalidFloat, span, "invalid float literal")
                            .with_label(reason),
                    );
                    return error_expr(span);
                }
            },
            Literal::Str(text) => Const::Str(text.clone()),
            Literal::Bool(value) => Const::Bool(*value),
        };
        constant(value, span)
    }

    fn binary(&mut self, op: BinOp, op_span: Span, lhs: Expr, rhs: Expr, span: Span) -> Expr {
        let arith = |op| Some(op);
        let arith_op = match op {
            BinOp::Add => arith(ArithOp::Add),
            BinOp::Sub => arith(ArithOp::Sub),
            BinOp::Mul => arith(ArithOp::Mul),
            BinOp::Div => arith(ArithOp::Div),
            _ => None,
        };
        if let Some(arith_op) = arith_op {
            if lhs.ty == Type::Instant && rhs.ty == Type::Instant {
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        op_span,
                        format!("`{}` does not apply to Instants", op.as_str()),
                    )
                    .with_label("both sides are points in time")
                    .with_help("the seconds between two Instants are `time_diff(a, b)`"),
                );
                return error_expr(span);
            }
            let (lhs, rhs, ty) = self.unify_numeric(lhs, rhs, op_span, op.as_str());
            return Expr {
                kind: ExprKind::Arith {
                    op: arith_op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                ty,
                span,
            };
        }
        match op {
            BinOp::And | BinOp::Or => {
                let lhs = self.coerce(lhs, &Type::Bool, op.as_str());
                let rhs = self.coerce(rhs, &Type::Bool, op.as_str());
                let kind = if op == BinOp::And {
                    ExprKind::And(Box::new(lhs), Box::new(rhs))
                } else {
                    ExprKind::Or(Box::new(lhs), Box::new(rhs))
                };
                Expr {
                    kind,
                    ty: Type::Bool,
                    span,
                }
            }
            _ => {
                let cmp = match op {
                    BinOp::Eq => CmpOp::Eq,
                    BinOp::Ne => CmpOp::Ne,
                    BinOp::Lt => CmpOp::Lt,
                    BinOp::Gt => CmpOp::Gt,
                    BinOp::Le => CmpOp::Le,
                    _ => CmpOp::Ge,
                };
                self.compare(cmp, op, op_span, lhs, rhs, span)
            }
        }
    }

    fn compare(
        &mut self,
        cmp: CmpOp,
        op: BinOp,
        op_span: Span,
        lhs: Expr,
        rhs: Expr,
        span: Span,
    ) -> Expr {
        let ordering = !matches!(cmp, CmpOp::Eq | CmpOp::Ne);
        let (lhs, rhs) = if lhs.ty.is_numeric() || rhs.ty.is_numeric() {
            let (lhs, rhs, _) = self.unify_numeric(lhs, rhs, op_span, op.as_str());
            (lhs, rhs)
        } else {
            let comparable = match (&lhs.ty, &rhs.ty) {
                (Type::Unknown, _) | (_, Type::Unknown) => true,
                (Type::Instant, Type::Instant) => true,
                (Type::Str, Type::Str) | (Type::Bool, Type::Bool) => !ordering,
                _ => false,
            };
            if !comparable {
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        op_span,
                        format!(
                            "cannot compare {} with {} using `{}`",
                            lhs.ty,
                            rhs.ty,
                            op.as_str()
                        ),
                    )
                    .with_label(format!("left is {}, right is {}", lhs.ty, rhs.ty))
                    .with_help(if ordering {
                        "`<`, `>`, `<=`, `>=` compare numbers and Instants"
                    } else {
                        "both sides must have the same type"
                    }),
                );
            }
            (lhs, rhs)
        };
        Expr {
            kind: ExprKind::Compare {
                op: cmp,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            ty: Type::Bool,
            span,
        }
    }

    /// Brings two numeric operands to one type: an int meets a float as a float (exactly); a
    /// uint meets an int only when the int is a constant.
    pub(super) fn unify_numeric(
        &mut self,
        lhs: Expr,
        rhs: Expr,
        op_span: Span,
        op: &str,
    ) -> (Expr, Expr, Type) {
        match (&lhs.ty, &rhs.ty) {
            (Type::Unknown, Type::Unknown) => (lhs, rhs, Type::Unknown),
            (Type::Unknown, t) | (t, Type::Unknown) if t.is_numeric() => {
                let ty = t.clone();
                (lhs, rhs, ty)
            }
            (a, b) if a == b && a.is_numeric() => {
                let ty = a.clone();
                (lhs, rhs, ty)
            }
            (Type::Float, b) if b.is_integer() => (lhs, to_float(rhs), Type::Float),
            (a, Type::Float) if a.is_integer() => (to_float(lhs), rhs, Type::Float),
            (Type::Uint, Type::Int) if is_const(&rhs) => {
                let rhs = self.coerce(rhs, &Type::Uint, op);
                (lhs, rhs, Type::Uint)
            }
            (Type::Int, Type::Uint) if is_const(&lhs) => {
                let lhs = self.coerce(lhs, &Type::Uint, op);
                (lhs, rhs, Type::Uint)
            }
            (a, b) => {
                let help = if a.is_integer() && b.is_integer() {
                    "int and uint do not mix; declare both with the same type"
                } else {
                    "arithmetic and ordering work on int, uint and float"
                };
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        op_span,
                        format!("`{op}` cannot combine {a} and {b}"),
                    )
                    .with_label(format!("left is {a}, right is {b}"))
                    .with_help(help),
                );
                (lhs, rhs, Type::Unknown)
            }
        }
    }

    /// Converts `e` to type `to` where the language allows it, or reports a mismatch.
    /// `context` names what wants the value, for the message.
    pub(super) fn coerce(&mut self, e: Expr, to: &Type, context: &str) -> Expr {
        if e.ty.agrees_with(to) {
            if let Type::Pair(..) = to {
                return self.coerce_pair(e, to, context);
            }
            return e;
        }
        match (&e.ty, to) {
            (from, Type::Float) if from.is_integer() => to_float(e),
            (Type::Int, Type::Uint) => match e.kind {
                ExprKind::Const(Const::Int(v)) => constant(Const::Uint(v as u64), e.span),
                _ => self.mismatch(e, to, context),
            },
            (Type::Instant, Type::Float) => {
                self.error(
                    Diagnostic::new(Code::Coercion, e.span, "an Instant is used as a float")
                        .with_label("read as seconds since the clock's origin (ns / 10^9, exactly)")
                        .with_help("declare the variable as `Instant` to keep the time itself"),
                );
                Expr {
                    ty: Type::Float,
                    span: e.span,
                    kind: ExprKind::InstantSeconds(Box::new(e)),
                }
            }
            (Type::Pair(..), Type::Pair(..)) => self.coerce_pair(e, to, context),
            _ => self.mismatch(e, to, context),
        }
    }

    /// Pairs convert element by element; a pair that is not written out cannot.
    fn coerce_pair(&mut self, e: Expr, to: &Type, context: &str) -> Expr {
        let (Type::Pair(ta, tb), ExprKind::Pair(a, b)) = (to, e.kind.clone()) else {
            return if e.ty.agrees_with(to) {
                e
            } else {
                self.mismatch(e, to, context)
            };
        };
        let a = self.coerce(*a, ta, context);
        let b = self.coerce(*b, tb, context);
        let ty = Type::Pair(Box::new(a.ty.clone()), Box::new(b.ty.clone()));
        Expr {
            kind: ExprKind::Pair(Box::new(a), Box::new(b)),
            ty,
            span: e.span,
        }
    }

    fn mismatch(&mut self, e: Expr, to: &Type, context: &str) -> Expr {
        let help = match (&e.ty, to) {
            (Type::Float, t) if t.is_integer() => {
                "a float does not convert to an integer implicitly; declare the target as float"
                    .to_string()
            }
            (Type::Rpc, _) => {
                "the RPC can only be sent or passed to get, set and byte_size".to_string()
            }
            _ => format!("{context} needs a value of type {to}"),
        };
        self.error(
            Diagnostic::new(
                Code::TypeMismatch,
                e.span,
                format!("expected {to}, found {}", e.ty),
            )
            .with_label(format!("this is {}", e.ty))
            .with_help(help),
        );
        error_expr(e.span)
    }

    /// Values that cannot be stored or computed with: the RPC itself and statement-like calls.
    pub(super) fn value_check(&mut self, e: &Expr) -> bool {
        let (what, help) = match e.ty {
            Type::Rpc => (
                "the RPC is not a value",
                "it can only be sent or passed to get, set and byte_size",
            ),
            Type::Unit => (
                "this call has no value",
                "call it as a statement on its own line",
            ),
            _ => return true,
        };
        self.error(
            Diagnostic::new(Code::TypeMismatch, e.span, what)
                .with_label("used as a value here")
                .with_help(help),
        );
        false
    }
}

pub(super) fn constant(value: Const, span: Span) -> Expr {
    let ty = match &value {
        Const::Int(_) => Type::Int,
        Const::Uint(_) => Type::Uint,
        Const::Float(_) => Type::Float,
        Const::Bool(_) => Type::Bool,
        Const::Str(_) => Type::Str,
    };
    Expr {
        kind: ExprKind::Const(value),
        ty,
        span,
    }
}

pub(super) fn opaque(
    construct: &str,
    reason: ir::Missing,
    args: Vec<Expr>,
    ty: Type,
    span: Span,
) -> Expr {
    Expr {
        kind: ExprKind::Opaque {
            feature: ir::Feature {
                construct: construct.to_string(),
                reason,
            },
            args,
        },
        ty,
        span,
    }
}

fn is_const(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Const(_))
}

/// Exact promotion to float; constants are folded so that the IR shows `1.0`, not a call.
pub(super) fn to_float(e: Expr) -> Expr {
    match e.kind {
        ExprKind::Const(Const::Int(v)) => {
            constant(Const::Float(BigRational::from_integer(v.into())), e.span)
        }
        ExprKind::Const(Const::Uint(v)) => {
            constant(Const::Float(BigRational::from_integer(v.into())), e.span)
        }
        _ => Expr {
            ty: Type::Float,
            span: e.span,
            kind: ExprKind::ToFloat(Box::new(e)),
        },
    }
}
