//! Statements: assignments, sends, matches, reachability.

use super::*;
use crate::ast::{Direction, ErrValue, ExprKind as Ast, PatternKind, SendValue, StmtKind, Target};
use crate::ir::{Action, Const, Expr, ExprKind, Missing, Place, Stmt};

impl Lowerer {
    /// Lowers a block; the flag says whether every path through it ends in a `send`.
    /// Statements after a `send` are still checked, but dropped with a warning.
    pub(super) fn block(&mut self, block: &ast::Block) -> (ir::Block, bool) {
        let mut out = Vec::new();
        let mut ends = false;
        let mut warned = false;
        for stmt in &block.stmts {
            if !ends {
                ends = self.stmt(stmt, &mut out);
                continue;
            }
            // One warning at the first unreachable statement; the rest are checked too.
            if !warned {
                self.error(
                    Diagnostic::new(Code::Unreachable, stmt.span, "unreachable statement")
                        .with_label("never runs: every path before it has sent")
                        .with_help("remove it, or move it before the `send`"),
                );
            }
            warned = true;
            self.stmt(stmt, &mut Vec::new());
        }
        (out, ends)
    }

    /// Lowers one statement into `out`; returns whether it always ends the handler.
    fn stmt(&mut self, stmt: &ast::Stmt, out: &mut ir::Block) -> bool {
        match &stmt.kind {
            StmtKind::Pass => false,
            StmtKind::Expr(e) => {
                self.expr_stmt(e, out);
                false
            }
            StmtKind::Assign { target, value } => {
                self.assign(target, value, stmt.span, out);
                false
            }
            StmtKind::Send {
                value,
                dir,
                dir_span,
            } => self.send(value, *dir, *dir_span, stmt.span, out),
            StmtKind::Match { scrutinee, arms } => self.match_stmt(scrutinee, arms, stmt.span, out),
            StmtKind::Foreach {
                collection,
                param,
                body,
            } => {
                self.foreach(collection, param, body, stmt.span, out);
                false
            }
        }
    }

    fn expr_stmt(&mut self, e: &ast::Expr, out: &mut ir::Block) {
        if let Ast::Builtin { op, target, args } = &e.unparen().kind
            && matches!(op, ast::BuiltinOp::Set | ast::BuiltinOp::Delete)
        {
            out.extend(self.set_or_delete(*op, target, args, e.span));
            return;
        }
        let value = self.expr(e);
        match value.kind {
            ExprKind::Opaque { feature, args } if value.ty == Type::Unit => {
                out.push(Stmt::Opaque {
                    feature,
                    args,
                    body: Vec::new(),
                    span: value.span,
                });
            }
            _ => out.push(Stmt::Eval { value }),
        }
    }

    fn assign(&mut self, target: &Target, value: &ast::Expr, span: Span, out: &mut ir::Block) {
        let value = self.expr(value);
        if !self.value_check(&value) {
            return;
        }
        match target {
            Target::Single(name) => {
                if let Some(place) = self.assign_place(name, &value) {
                    let value = match &place {
                        Place::State(id) => {
                            let ty = self.state_type(*id).clone();
                            self.coerce(value, &ty, &format!("the state variable `{}`", name.name))
                        }
                        Place::Local(id) => {
                            let ty = self.local_type(*id).clone();
                            let value =
                                self.coerce(value, &ty, &format!("the local `{}`", name.name));
                            // A local first assigned an unknown value learns its type later.
                            if ty == Type::Unknown {
                                self.cx.locals[id.0 as usize].ty = value.ty.clone();
                            }
                            value
                        }
                    };
                    out.push(Stmt::Assign { place, value, span });
                }
            }
            Target::Pair(a, b) => {
                let (ta, tb, opaque) = match &value.ty {
                    Type::Pair(ta, tb) => ((**ta).clone(), (**tb).clone(), false),
                    Type::Unknown => (Type::Unknown, Type::Unknown, false),
                    // AppNet's grammar accepts unpacking `get(m, k)` directly (servicerouter
                    // elements do), though nothing says what an absent key gives.
                    Type::Option(inner) if pair_parts(inner).is_some() => {
                        self.error(
                            Diagnostic::new(
                                Code::NoMeaning,
                                value.span,
                                "an optional value is unpacked as if it were present",
                            )
                            .with_label("may be `None`; `run` and `build` refuse this")
                            .with_help("match it first: `match get(m, k):` with `Some(pair) =>` and `None =>` arms"),
                        );
                        let (ta, tb) = pair_parts(inner).unwrap_or_default();
                        (ta, tb, true)
                    }
                    other => {
                        self.error(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                value.span,
                                format!("expected a pair, found {other}"),
                            )
                            .with_label("cannot be unpacked into two names"),
                        );
                        return;
                    }
                };
                let (Some(first), Some(second)) = (self.bind(a, ta), self.bind(b, tb)) else {
                    return;
                };
                if opaque {
                    out.push(Stmt::Opaque {
                        feature: ir::Feature {
                            construct: "unpacking an optional value".to_string(),
                            reason: Missing::Meaning,
                        },
                        args: vec![value],
                        body: Vec::new(),
                        span,
                    });
                    return;
                }
                out.push(Stmt::Unpack {
                    first,
                    second,
                    value,
                    span,
                });
            }
        }
    }

    /// Where `name = value` writes: a state variable, an existing local, or a new local.
    fn assign_place(&mut self, name: &ast::Ident, value: &Expr) -> Option<Place> {
        if let Some(id) = self.lookup_local(&name.name) {
            return Some(Place::Local(id));
        }
        if let Some(&id) = self.state_by_name.get(&name.name) {
            if matches!(self.state_type(id), Type::Map(..) | Type::Vec(_)) {
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        name.span,
                        format!("`{}` cannot be assigned as a whole", name.name),
                    )
                    .with_label("a map or vector")
                    .with_help("write entries with `set(..)` and remove them with `delete(..)`"),
                );
                return None;
            }
            self.note_state_write(id);
            return Some(Place::State(id));
        }
        if self.is_rpc(&name.name) || matches!(name.name.as_str(), "inf" | "inf_f") {
            self.error(
                Diagnostic::new(
                    Code::AssignToConstant,
                    name.span,
                    format!("`{}` cannot be assigned", name.name),
                )
                .with_label(if self.is_rpc(&name.name) {
                    "this is the handler's RPC"
                } else {
                    "this is a predefined constant"
                })
                .with_help("assign to a new local name instead"),
            );
            return None;
        }
        Some(Place::Local(
            self.declare_local(&name.name, value.ty.clone()),
        ))
    }

    /// Binds a name to a value of type `ty` (pattern bindings, unpacking, lambda parameters):
    /// reuses a local of the same type, otherwise declares one.
    fn bind(&mut self, name: &ast::Ident, ty: Type) -> Option<LocalId> {
        if self.state_by_name.contains_key(&name.name) || self.is_rpc(&name.name) {
            self.error(
                Diagnostic::new(
                    Code::AssignToConstant,
                    name.span,
                    format!("`{}` is already a state variable or the RPC", name.name),
                )
                .with_label("cannot be bound here")
                .with_help("choose a new local name"),
            );
            return None;
        }
        match self.lookup_local(&name.name) {
            Some(id) if self.local_type(id).agrees_with(&ty) => Some(id),
            _ => Some(self.declare_local(&name.name, ty)),
        }
    }

    fn send(
        &mut self,
        value: &SendValue,
        dir: Direction,
        dir_span: Span,
        span: Span,
        out: &mut ir::Block,
    ) -> bool {
        let kind = self.kind();
        if kind == HandlerKind::Init {
            self.error(
                Diagnostic::new(Code::SendDirection, span, "`init` cannot send")
                    .with_label("there is no RPC when the program loads")
                    .with_help("remove the `send`"),
            );
            return true;
        }
        let action = match value {
            SendValue::Err(arg) => {
                let reason = match &arg.value {
                    ErrValue::Str(text) => {
                        super::expr::constant(Const::Str(text.clone()), arg.span)
                    }
                    ErrValue::Name(name) => {
                        let e = self.expr(&ast::Expr::new(Ast::Name(name.name.clone()), name.span));
                        self.coerce(e, &Type::Str, "err(..)")
                    }
                };
                let allowed = kind == HandlerKind::Req && dir == Direction::Up;
                if !allowed {
                    let help = if kind == HandlerKind::Req {
                        "an error goes back to the caller: `send(err('..'), Up)`"
                    } else {
                        "`resp` can only forward the response in this version: `send(rpc, Up)`"
                    };
                    self.error(
                        Diagnostic::new(
                            Code::SendDirection,
                            dir_span,
                            format!(
                                "`send(err(..), {})` is not allowed in `{}`",
                                dir_name(dir),
                                kind.as_str()
                            ),
                        )
                        .with_label("wrong direction for an error")
                        .with_help(help),
                    );
                }
                Action::Reject { reason }
            }
            SendValue::Expr(e) => {
                let names_rpc = matches!(&e.unparen().kind, Ast::Name(name) if self.is_rpc(name));
                if !names_rpc {
                    let shown = self.cx.rpc.clone().unwrap_or_else(|| "rpc".to_string());
                    // Still check the expression for its own errors.
                    self.expr(e);
                    self.error(
                        Diagnostic::new(
                            Code::SendValue,
                            e.span,
                            "only the handler's RPC or an error can be sent",
                        )
                        .with_label("not the RPC")
                        .with_help(format!("send `{shown}`, or `err('reason')`")),
                    );
                }
                let forward_dir = if kind == HandlerKind::Req {
                    Direction::Down
                } else {
                    Direction::Up
                };
                if dir != forward_dir {
                    if kind == HandlerKind::Req {
                        // AppNet's gRPC and Wasm backends forward the request anyway, and real
                        // elements (echo_elements/null.appnet) rely on it.
                        self.error(
                            Diagnostic::new(
                                Code::CompatSend,
                                dir_span,
                                "`send(rpc, Up)` in `req` forwards the request",
                            )
                            .with_label("read as `Down`, as AppNet's backends do")
                            .with_help("write `send(rpc, Down)`"),
                        );
                    } else {
                        self.error(
                            Diagnostic::new(
                                Code::SendDirection,
                                dir_span,
                                "`send(rpc, Down)` is not allowed in `resp`",
                            )
                            .with_label("a response travels up")
                            .with_help("write `send(rpc, Up)`"),
                        );
                    }
                }
                Action::Forward
            }
        };
        out.push(Stmt::Send { action, span });
        true
    }

    fn match_stmt(
        &mut self,
        scrutinee: &ast::Expr,
        arms: &[ast::Arm],
        span: Span,
        out: &mut ir::Block,
    ) -> bool {
        let scrutinee = self.expr(scrutinee);
        let option_arms = arms.iter().any(|arm| {
            matches!(
                arm.pattern.kind,
                PatternKind::Some(_) | PatternKind::SomeErr(_) | PatternKind::None
            )
        });
        match &scrutinee.ty {
            Type::Option(_) => self.match_option(scrutinee, arms, span, out),
            Type::Unknown if option_arms => self.match_option(scrutinee, arms, span, out),
            _ if option_arms => {
                let arm = arms
                    .iter()
                    .find(|arm| {
                        matches!(
                            arm.pattern.kind,
                            PatternKind::Some(_) | PatternKind::SomeErr(_) | PatternKind::None
                        )
                    })
                    .map_or(span, |arm| arm.pattern.span);
                self.error(
                    Diagnostic::new(
                        Code::OptionMatchArms,
                        arm,
                        format!(
                            "`Some`/`None` arms need an optional value, but this is {}",
                            scrutinee.ty
                        ),
                    )
                    .with_label("option pattern")
                    .with_secondary(scrutinee.span, format!("this is {}", scrutinee.ty))
                    .with_help("`get(map, key)` gives an optional value"),
                );
                false
            }
            _ => self.match_values(scrutinee, arms, out),
        }
    }

    fn match_option(
        &mut self,
        scrutinee: Expr,
        arms: &[ast::Arm],
        span: Span,
        out: &mut ir::Block,
    ) -> bool {
        let inner = match &scrutinee.ty {
            Type::Option(inner) => (**inner).clone(),
            _ => Type::Unknown,
        };
        let mut some: Option<(&ast::Arm, Option<LocalId>)> = None;
        let mut none: Option<&ast::Arm> = None;
        let mut ok = true;
        for arm in arms {
            let duplicate = match &arm.pattern.kind {
                PatternKind::Some(binding) => {
                    let dup = some.is_some();
                    if !dup {
                        let local = if binding.name == "_" {
                            None
                        } else {
                            self.bind(binding, inner.clone())
                        };
                        some = Some((arm, local));
                    }
                    dup
                }
                PatternKind::None => {
                    let dup = none.is_some();
                    none = none.or(Some(arm));
                    dup
                }
                PatternKind::SomeErr(_) => {
                    self.error(
                        Diagnostic::new(
                            Code::OptionMatchArms,
                            arm.pattern.span,
                            "`Some(err(..))` patterns are not supported",
                        )
                        .with_label("a map holds values, not errors")
                        .with_help("bind the value with `Some(x)`"),
                    );
                    ok = false;
                    false
                }
                _ => {
                    self.error(
                        Diagnostic::new(
                            Code::OptionMatchArms,
                            arm.pattern.span,
                            "a match on an optional value has exactly a `Some(x)` arm and a `None` arm",
                        )
                        .with_label("neither `Some(..)` nor `None`"),
                    );
                    ok = false;
                    false
                }
            };
            if duplicate {
                self.error(
                    Diagnostic::new(
                        Code::OptionMatchArms,
                        arm.pattern.span,
                        "this arm repeats an earlier one",
                    )
                    .with_label("second arm for the same case")
                    .with_help("merge the two arms"),
                );
                ok = false;
            }
        }
        for (missing, present) in [("None", none.is_some()), ("Some(x)", some.is_some())] {
            if !present {
                self.error(
                    Diagnostic::new(
                        Code::OptionMatchArms,
                        span,
                        format!("this match has no `{missing}` arm"),
                    )
                    .with_label(format!("`{missing}` is not handled"))
                    .with_help(format!(
                        "add an arm `{missing} =>` (its block may be `pass`)"
                    )),
                );
                ok = false;
            }
        }
        let (some_block, some_ends) = match some {
            Some((arm, _)) => self.block(&arm.body),
            None => (Vec::new(), false),
        };
        let (none_block, none_ends) = match none {
            Some(arm) => self.block(&arm.body),
            None => (Vec::new(), false),
        };
        if !ok {
            return false;
        }
        out.push(Stmt::MatchOption {
            scrutinee,
            binding: some.and_then(|(_, local)| local),
            some_block,
            none_block,
        });
        some_ends && none_ends
    }

    fn match_values(&mut self, scrutinee: Expr, arms: &[ast::Arm], out: &mut ir::Block) -> bool {
        let mut cases: Vec<(Const, ir::Block, Span)> = Vec::new();
        let mut default: Option<ir::Block> = None;
        let mut ok = true;
        for arm in arms {
            if default.is_some() {
                self.error(
                    Diagnostic::new(Code::Unreachable, arm.pattern.span, "unreachable match arm")
                        .with_label("the `_` arm above matches everything")
                        .with_help("move the `_` arm last"),
                );
                self.block(&arm.body);
                continue;
            }
            match &arm.pattern.kind {
                PatternKind::Name(name) if name == "_" => {
                    default = Some(self.block(&arm.body).0);
                }
                PatternKind::Name(name) => {
                    self.error(
                        Diagnostic::new(
                            Code::MatchArms,
                            arm.pattern.span,
                            format!("`{name}` is not a pattern"),
                        )
                        .with_label("a name can only be `_` here")
                        .with_help(format!(
                            "to compare with `{name}`, write `match value == {name}:`"
                        )),
                    );
                    self.block(&arm.body);
                    ok = false;
                }
                PatternKind::Literal(lit) => {
                    let pattern =
                        self.expr(&ast::Expr::new(Ast::Lit(lit.clone()), arm.pattern.span));
                    let pattern = self.coerce(pattern, &scrutinee.ty, "this match's arms");
                    let (body, _) = self.block(&arm.body);
                    let ExprKind::Const(value) = pattern.kind else {
                        ok = false;
                        continue;
                    };
                    if let Some((_, _, first)) = cases.iter().find(|(v, _, _)| *v == value) {
                        let first = *first;
                        self.error(
                            Diagnostic::new(
                                Code::MatchArms,
                                arm.pattern.span,
                                "this arm repeats an earlier one",
                            )
                            .with_label("never runs")
                            .with_secondary(first, "the same value is matched here")
                            .with_help("remove or merge the arms"),
                        );
                        ok = false;
                        continue;
                    }
                    cases.push((value, body, arm.pattern.span));
                }
                _ => unreachable!("option patterns are routed to match_option"),
            }
        }
        if !ok {
            return false;
        }
        if scrutinee.ty == Type::Bool {
            return self.match_bool(scrutinee, cases, default, out);
        }
        let stmt = Stmt::Switch {
            scrutinee,
            cases: cases
                .into_iter()
                .map(|(value, body, _)| (value, body))
                .collect(),
            default,
        };
        let ends = block_ends(std::slice::from_ref(&stmt));
        out.push(stmt);
        ends
    }

    /// A match on a bool is an `if`.
    fn match_bool(
        &mut self,
        cond: Expr,
        cases: Vec<(Const, ir::Block, Span)>,
        default: Option<ir::Block>,
        out: &mut ir::Block,
    ) -> bool {
        let mut then_block = None;
        let mut else_block = None;
        for (value, body, _) in cases {
            match value {
                Const::Bool(true) => then_block = Some(body),
                _ => else_block = Some(body),
            }
        }
        let fallback = default;
        // A missing arm runs nothing, which an empty block says exactly.
        let then_block = then_block.or_else(|| fallback.clone()).unwrap_or_default();
        let else_block = else_block.or(fallback).unwrap_or_default();
        let both_end = block_ends(&then_block) && block_ends(&else_block);
        out.push(Stmt::If {
            cond,
            then_block,
            else_block,
        });
        both_end
    }

    fn foreach(
        &mut self,
        collection: &ast::Ident,
        param: &ast::Ident,
        body: &ast::Block,
        span: Span,
        out: &mut ir::Block,
    ) {
        let vec = self.expr(&ast::Expr::new(
            Ast::Name(collection.name.clone()),
            collection.span,
        ));
        let elem = match &vec.ty {
            Type::Vec(elem) => (**elem).clone(),
            Type::Unknown => Type::Unknown,
            other => {
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        collection.span,
                        format!(
                            "`foreach` needs a vector, but `{}` is {other}",
                            collection.name
                        ),
                    )
                    .with_label("not a vector"),
                );
                return;
            }
        };
        self.bind(param, elem);
        let (body, _) = self.block(body);
        out.push(Stmt::Opaque {
            feature: ir::Feature {
                construct: "foreach".to_string(),
                reason: Missing::NotYet,
            },
            args: vec![vec],
            body,
            span,
        });
    }
}

/// Whether every path through an already-lowered block ends in a `send`.
fn block_ends(block: &[Stmt]) -> bool {
    block.iter().any(|stmt| match stmt {
        Stmt::Send { .. } => true,
        Stmt::If {
            then_block,
            else_block,
            ..
        } => block_ends(then_block) && block_ends(else_block),
        Stmt::MatchOption {
            some_block,
            none_block,
            ..
        } => block_ends(some_block) && block_ends(none_block),
        Stmt::Switch { cases, default, .. } => {
            default.as_ref().is_some_and(|b| block_ends(b))
                && cases.iter().all(|(_, b)| block_ends(b))
        }
        _ => false,
    })
}

fn pair_parts(ty: &Type) -> Option<(Type, Type)> {
    match ty {
        Type::Pair(a, b) => Some(((**a).clone(), (**b).clone())),
        _ => None,
    }
}

fn dir_name(dir: Direction) -> &'static str {
    match dir {
        Direction::Up => "Up",
        Direction::Down => "Down",
    }
}
