//! The typed IR: the single meaning of a policy.
//!
//! The interpreter, the C backends and the checker read this, never the syntax tree. Every
//! effect is explicit: state reads and writes name the state variable, random draws, the
//! clock and sends are their own nodes. Features the front end accepts but no target runs yet
//! (wire-schema fields, load balancing, `foreach`) are `Opaque` nodes, so `lint` can accept a
//! program that `run` and `build` then refuse with a clear reason.

mod display;
mod shape;
mod types;

pub use shape::same_shape;
pub use types::Type;

use num_rational::BigRational;

use crate::ast::HandlerKind;
use crate::span::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalId(pub u32);

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub state: Vec<StateVar>,
    pub init: Handler,
    pub req: Handler,
    pub resp: Handler,
}

/// Capacity of a map without `@capacity(N)` (LANGUAGE.md §3.4).
pub const DEFAULT_MAP_CAPACITY: u64 = 10240;

#[derive(Debug, Clone, PartialEq)]
pub struct StateVar {
    pub name: String,
    pub ty: Type,
    /// Entries a map holds at most; `None` for other types.
    pub capacity: Option<u64>,
    /// Whether `req` or `resp` writes it. A variable they never write keeps its `init` value
    /// for ever: targets may fold it into a constant.
    pub written_by_handlers: bool,
    /// AppNet's decorators (`@consistency(strong)`), kept as written; no target uses them yet.
    pub decorators: Vec<(String, String)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Handler {
    pub kind: HandlerKind,
    /// The name the handler gives its RPC parameter (`rpc`), if it has one.
    pub rpc: Option<String>,
    pub locals: Vec<Local>,
    pub body: Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    pub name: String,
    pub ty: Type,
}

pub type Block = Vec<Stmt>;

#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    State(StateId),
    Local(LocalId),
}

/// A vector being appended to: a state variable, or a vector held in a local (one that came
/// out of a map).
#[derive(Debug, Clone, PartialEq)]
pub enum VecRef {
    State(StateId),
    Local(LocalId),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Let the RPC continue: `send(rpc, Down)` in `req`, `send(rpc, Up)` in `resp`, or the end
    /// of the handler.
    Forward,
    /// Answer with an error instead: `send(err(reason), Up)`.
    Reject { reason: Expr },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Assign {
        place: Place,
        value: Expr,
        span: Span,
    },
    /// `(a, b) = pair`.
    Unpack {
        first: LocalId,
        second: LocalId,
        value: Expr,
        span: Span,
    },
    MapSet {
        map: StateId,
        key: Expr,
        value: Expr,
        span: Span,
    },
    MapDelete {
        map: StateId,
        key: Expr,
        span: Span,
    },
    VecAppend {
        vec: VecRef,
        value: Expr,
        span: Span,
    },
    /// An expression evaluated for its effects (draws, map reads), its value dropped.
    Eval {
        value: Expr,
    },
    If {
        cond: Expr,
        then_block: Block,
        else_block: Block,
    },
    /// `match` on a non-option value: the first case equal to the scrutinee runs, else the
    /// default, else nothing. The scrutinee is evaluated once.
    Switch {
        scrutinee: Expr,
        cases: Vec<(Const, Block)>,
        default: Option<Block>,
    },
    MatchOption {
        scrutinee: Expr,
        /// The local bound by `Some(x)`; `None` for `Some(_)`.
        binding: Option<LocalId>,
        some_block: Block,
        none_block: Block,
    },
    Send {
        action: Action,
        span: Span,
    },
    /// A statement no target supports yet; `feature` says which.
    Opaque {
        feature: Feature,
        args: Vec<Expr>,
        body: Block,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    /// The operator as C (and the policy language) writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinMax {
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Const(Const),
    State(StateId),
    Local(LocalId),
    /// Arithmetic in the expression's own type (`int`, `uint` wrap; `float` is exact).
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Both operands have the same type.
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Short-circuit: the right side runs only when needed.
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    MinMax {
        op: MinMax,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Exact promotion of an `int` or `uint` to `float`.
    ToFloat(Box<Expr>),
    /// An `Instant` read as float seconds since the clock's origin (ns / 10^9, exactly).
    InstantSeconds(Box<Expr>),
    /// `lo + (hi - lo) * u / 2^32` for the next draw `u`.
    Randomf {
        lo: Box<Expr>,
        hi: Box<Expr>,
    },
    /// `current_time()`: the invocation's start time.
    Now,
    /// `(a - b) / 10^9` seconds, exactly.
    TimeDiff(Box<Expr>, Box<Expr>),
    /// `Some(v)` or `None`.
    MapGet {
        map: StateId,
        key: Box<Expr>,
    },
    /// `byte_size(rpc, _)`: the RPC message's size in bytes.
    PayloadLen,
    VecSize(VecRef),
    Pair(Box<Expr>, Box<Expr>),
    /// A value no target computes yet (wire-schema fields, load balancing, encryption).
    Opaque {
        feature: Feature,
        args: Vec<Expr>,
    },
}

/// A constant. Floats are exact rationals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Const {
    Int(i64),
    Uint(u64),
    Float(BigRational),
    Bool(bool),
    Str(String),
}

/// What an opaque node stands for, and why it cannot run yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The construct as the user wrote it, e.g. `get(rpc, 'body')` or `foreach`.
    pub construct: String,
    pub reason: Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Reading or writing RPC fields, headers or ids needs to know where they are in a packet.
    WireSchema,
    /// A feature no part of the project implements yet.
    NotYet,
    /// A construct AppNet's grammar accepts but that means nothing we can execute (an
    /// undeclared name, a vector written at an index). `lint` warns; `run` and `build` refuse.
    Meaning,
}

impl Program {
    pub fn handler(&self, kind: HandlerKind) -> &Handler {
        match kind {
            HandlerKind::Init => &self.init,
            HandlerKind::Req => &self.req,
            HandlerKind::Resp => &self.resp,
        }
    }

    pub fn state_var(&self, id: StateId) -> &StateVar {
        &self.state[id.0 as usize]
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.state
            .iter()
            .position(|var| var.name == name)
            .map(|index| StateId(index as u32))
    }

    /// Every opaque construct in the program, in source order: what `run` and `build` refuse.
    pub fn opaque_uses(&self) -> Vec<(Span, Feature)> {
        let mut found = Vec::new();
        for handler in [&self.init, &self.req, &self.resp] {
            walk_block(&handler.body, &mut |stmt| {
                match stmt {
                    Stmt::VecAppend {
                        vec: VecRef::Local(_),
                        span,
                        ..
                    } => found.push((
                        *span,
                        Feature {
                            construct: "appending to a vector stored in a map".to_string(),
                            reason: Missing::NotYet,
                        },
                    )),
                    Stmt::Opaque { feature, span, .. } => found.push((*span, feature.clone())),
                    _ => {}
                }
                for expr in stmt_exprs(stmt) {
                    walk_expr(expr, &mut |e| {
                        if let ExprKind::Opaque { feature, .. } = &e.kind {
                            found.push((e.span, feature.clone()));
                        }
                    });
                }
            });
        }
        found.sort_by_key(|(span, _)| *span);
        found
    }
}

impl Handler {
    pub fn local(&self, id: LocalId) -> &Local {
        &self.locals[id.0 as usize]
    }
}

/// Calls `f` on every statement of a block, nested ones included, in order.
pub fn walk_block<'b>(block: &'b [Stmt], f: &mut impl FnMut(&'b Stmt)) {
    for stmt in block {
        f(stmt);
        match stmt {
            Stmt::If {
                then_block,
                else_block,
                ..
            } => {
                walk_block(then_block, f);
                walk_block(else_block, f);
            }
            Stmt::Switch { cases, default, .. } => {
                for (_, block) in cases {
                    walk_block(block, f);
                }
                if let Some(block) = default {
                    walk_block(block, f);
                }
            }
            Stmt::MatchOption {
                some_block,
                none_block,
                ..
            } => {
                walk_block(some_block, f);
                walk_block(none_block, f);
            }
            Stmt::Opaque { body, .. } => walk_block(body, f),
            _ => {}
        }
    }
}

/// The expressions a statement evaluates itself (not those of nested blocks).
pub fn stmt_exprs(stmt: &Stmt) -> Vec<&Expr> {
    match stmt {
        Stmt::Assign { value, .. } | Stmt::Unpack { value, .. } | Stmt::Eval { value } => {
            vec![value]
        }
        Stmt::MapSet { key, value, .. } => vec![key, value],
        Stmt::MapDelete { key, .. } => vec![key],
        Stmt::VecAppend { value, .. } => vec![value],
        Stmt::If { cond, .. } => vec![cond],
        Stmt::Switch { scrutinee, .. } | Stmt::MatchOption { scrutinee, .. } => vec![scrutinee],
        Stmt::Send {
            action: Action::Reject { reason },
            ..
        } => vec![reason],
        Stmt::Send { .. } => vec![],
        Stmt::Opaque { args, .. } => args.iter().collect(),
    }
}

/// Calls `f` on `expr` and every expression inside it, outermost first.
pub fn walk_expr<'e>(expr: &'e Expr, f: &mut impl FnMut(&'e Expr)) {
    f(expr);
    match &expr.kind {
        ExprKind::Arith { lhs, rhs, .. }
        | ExprKind::Compare { lhs, rhs, .. }
        | ExprKind::MinMax { lhs, rhs, .. }
        | ExprKind::And(lhs, rhs)
        | ExprKind::Or(lhs, rhs)
        | ExprKind::TimeDiff(lhs, rhs)
        | ExprKind::Pair(lhs, rhs)
        | ExprKind::Randomf { lo: lhs, hi: rhs } => {
            walk_expr(lhs, f);
            walk_expr(rhs, f);
        }
        ExprKind::ToFloat(inner) | ExprKind::InstantSeconds(inner) => walk_expr(inner, f),
        ExprKind::MapGet { key, .. } => walk_expr(key, f),
        ExprKind::Opaque { args, .. } => args.iter().for_each(|arg| walk_expr(arg, f)),
        ExprKind::Const(_)
        | ExprKind::State(_)
        | ExprKind::Local(_)
        | ExprKind::Now
        | ExprKind::PayloadLen
        | ExprKind::VecSize(_) => {}
    }
}
