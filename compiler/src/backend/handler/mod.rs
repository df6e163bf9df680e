//! The `req` handler as the body of the XDP function: statements and expressions to C.
//!
//! Floats become integer linear forms (`linear.rs`); integers wrap in `__u64` arithmetic the
//! way the language says; a branch condition on one variable narrows that variable's range,
//! which is what lets `tokens - 1.0` under `tokens >= 1.0` be stored without overflow.
//! Every construct the target cannot run exactly gets a diagnostic at its span.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::{
    Action, ArithOp, Block, CmpOp, Const, Expr, ExprKind, Handler, LocalId, MinMax, Place, Program,
    StateId, Stmt, Type, VecRef,
};
use simplebpf_dsl::span::Span;
use simplebpf_dsl::{Code, Diagnostic};

use super::layout::{Codec, Storage, c_type};
use super::linear::{self, Atom, Decision, Lin, Range, VarKey, c_int_literal};
use crate::contract::len_symbol;

mod cond;
mod expr;
mod stmt;

/// A variable whose fixed-point scale the backend chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScaleVar {
    State(StateId),
    Local(LocalId),
    MapValue(StateId),
    VecElement(StateId),
}

/// How draws are taken: inline at each `randomf`, or from values drawn before the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draws {
    Inline,
    Queue(usize),
}

/// Settings of one generation pass.
#[derive(Debug)]
pub struct Setup<'a> {
    pub program: &'a Program,
    pub handler: &'a Handler,
    pub storage: &'a [Storage],
    pub scales: &'a BTreeMap<ScaleVar, BigInt>,
    pub local_names: &'a [String],
    pub atomic_adds: &'a std::collections::BTreeSet<Span>,
    pub draws: Draws,
    pub draw_call: &'a str,
    pub locked: bool,
    pub addends: super::strategy::AddendPlace,
    pub verdicts: super::strategy::VerdictShape,
}

/// What one pass produced.
#[derive(Debug, Default)]
pub struct Generated {
    pub body: String,
    pub diagnostics: Vec<Diagnostic>,
    /// The scale each float variable needs for what is stored into it.
    pub required: BTreeMap<ScaleVar, (BigInt, Span)>,
    pub helpers: Helpers,
}

/// C helpers the body calls, so that only those are emitted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Helpers {
    pub div_s64: bool,
    pub div_u64: bool,
    pub add_capped: bool,
}

#[derive(Debug, Clone)]
enum CVal {
    /// `int`, `uint`, `bool` (0 or 1) or `Instant` as a C expression of that type.
    Int {
        c: String,
        ty: Type,
    },
    Float(Lin),
    /// Known at build time (strings, options of them, folded maps).
    Known(Value),
    /// An optional scalar at run time: a presence flag and the value.
    Opt {
        some: String,
        value: Box<CVal>,
    },
}

#[derive(Debug, Clone, Default)]
struct Env {
    ranges: BTreeMap<VarKey, Range>,
    consts: BTreeMap<LocalId, Option<Value>>,
    live: bool,
}

impl Env {
    fn join(branches: Vec<Env>) -> Env {
        let mut live: Vec<Env> = branches.into_iter().filter(|env| env.live).collect();
        let Some(mut joined) = live.pop() else {
            return Env::default();
        };
        for env in live {
            let keys: Vec<VarKey> = joined
                .ranges
                .keys()
                .chain(env.ranges.keys())
                .copied()
                .collect();
            for key in keys {
                match (joined.ranges.get(&key), env.ranges.get(&key)) {
                    (Some(a), Some(b)) => {
                        let range = a.join(b);
                        joined.ranges.insert(key, range);
                    }
                    // Unknown on one side: the default range of the variable applies.
                    _ => {
                        joined.ranges.remove(&key);
                    }
                }
            }
            let locals: Vec<LocalId> = env.consts.keys().copied().collect();
            for id in locals {
                if joined.consts.get(&id) != env.consts.get(&id) {
                    joined.consts.insert(id, None);
                }
            }
        }
        joined
    }
}

pub struct Gen<'a> {
    s: &'a Setup<'a>,
    out: String,
    indent: usize,
    tmp: usize,
    env: Env,
    result: Generated,
}

const PAYLOAD_MAX: u64 = 65535 - 8;

impl<'a> Gen<'a> {
    pub fn run(setup: &'a Setup<'a>) -> Generated {
        let mut gen_ = Gen {
            s: setup,
            out: String::new(),
            indent: 1,
            tmp: 0,
            env: Env {
                live: true,
                ..Env::default()
            },
            result: Generated::default(),
        };
        for (index, local) in setup.handler.locals.iter().enumerate() {
            let id = LocalId(index as u32);
            if super::analysis::is_runtime_type(&local.ty) {
                gen_.env
                    .ranges
                    .insert(VarKey::Local(id.0), Range::point(BigInt::zero()));
            } else if let Type::Option(inner) = &local.ty
                && super::analysis::is_runtime_type(inner)
            {
            } else {
                gen_.env.consts.insert(id, Some(Value::zero(&local.ty)));
            }
        }
        gen_.block(&setup.handler.body);
        if gen_.env.live {
            gen_.send_forward();
        }
        gen_.result.body = gen_.out;
        gen_.result
    }

    // ---- output ----

    fn line(&mut self, text: &str) {
        if text.is_empty() {
            self.out.push('\n');
            return;
        }
        for _ in 0..self.indent {
            self.out.push('\t');
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn fresh(&mut self, stem: &str) -> String {
        self.tmp += 1;
        format!("sb_{stem}{}", self.tmp)
    }

    fn error(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let label = match code {
            Code::NoExactInteger => "no exact integer form",
            _ => "not supported on the eBPF target",
        };
        self.result.diagnostics.push(
            Diagnostic::new(code, span, message)
                .with_label(label)
                .with_help(help),
        );
    }

    fn unsupported(&mut self, span: Span, what: &str) {
        self.error(
            Code::TargetUnsupported,
            span,
            format!("{what} is not supported on the eBPF target yet"),
            "the interpreter (`simplebpf run`) runs it; the XDP backend does not",
        );
    }

    fn require_scale(&mut self, var: ScaleVar, scale: &BigInt, span: Span) {
        let entry = self
            .result
            .required
            .entry(var)
            .or_insert_with(|| (BigInt::one(), span));
        let lcm = entry.0.lcm(scale);
        if lcm != entry.0 {
            *entry = (lcm, span);
        }
    }

    fn scale_of(&self, var: ScaleVar) -> BigInt {
        self.s.scales.get(&var).cloned().unwrap_or_else(BigInt::one)
    }

    // ---- names and storage ----

    fn state_name(&self, id: StateId) -> &str {
        &self.s.program.state_var(id).name
    }

    fn local_name(&self, id: LocalId) -> &str {
        &self.s.local_names[id.0 as usize]
    }

    fn storage(&self, id: StateId) -> &Storage {
        &self.s.storage[id.0 as usize]
    }
}

fn arith_text(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
    }
}

fn nanos() -> BigInt {
    BigInt::from(1_000_000_000u64)
}

fn with_effects(effects: &[String], c: &str) -> String {
    if effects.is_empty() {
        return c.to_string();
    }
    let mut out = String::from("(");
    for effect in effects {
        let _ = write!(out, "(void)({effect}), ");
    }
    let _ = write!(out, "{c})");
    out
}

pub fn has_draw(expr: &Expr) -> bool {
    let mut found = false;
    simplebpf_dsl::ir::walk_expr(expr, &mut |e| {
        found |= matches!(e.kind, ExprKind::Randomf { .. });
    });
    found
}

/// A node with draws under two of its operands, where C leaves the order open. `and`/`or`
/// sequence their operands, so they are fine.
fn unsequenced_draws(expr: &Expr) -> Option<Span> {
    let mut found = None;
    simplebpf_dsl::ir::walk_expr(expr, &mut |e| {
        if found.is_some() {
            return;
        }
        match &e.kind {
            ExprKind::Arith { lhs, rhs, .. }
            | ExprKind::Compare { lhs, rhs, .. }
            | ExprKind::MinMax { lhs, rhs, .. }
            | ExprKind::TimeDiff(lhs, rhs)
            | ExprKind::Pair(lhs, rhs)
            | ExprKind::Randomf { lo: lhs, hi: rhs }
                if has_draw(lhs) && has_draw(rhs) =>
            {
                found = Some(e.span);
            }
            _ => {}
        }
    });
    found
}
