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

struct Cond {
    c: String,
    narrow_true: Vec<(VarKey, Range)>,
    narrow_false: Vec<(VarKey, Range)>,
    /// `Some(v)` when the condition is `v` for every input and evaluating it has no effect.
    constant: Option<bool>,
    /// `Some((var, range))` when the condition, which has no effect, holds exactly when the
    /// variable is in the range: another condition that implies this makes it redundant.
    exact: Option<(VarKey, Range)>,
}

impl Cond {
    /// Whether this condition holding implies that `other` holds, from what each says of one
    /// variable.
    fn implies(&self, other: &Cond) -> bool {
        let Some((var, range)) = &other.exact else {
            return false;
        };
        self.narrow_true
            .iter()
            .any(|(v, r)| v == var && r.lo >= range.lo && r.hi <= range.hi)
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

    // ---- statements ----

    fn block(&mut self, block: &Block) {
        for stmt in block {
            if !self.env.live {
                break;
            }
            self.stmt(stmt);
        }
    }

    fn nested(&mut self, block: &Block, env: Env) -> Env {
        let saved = std::mem::replace(&mut self.env, env);
        self.indent += 1;
        self.block(block);
        self.indent -= 1;
        std::mem::replace(&mut self.env, saved)
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::Assign { place, value, span } => self.assign(place, value, *span),
            Stmt::Unpack { span, .. } => self.unsupported(*span, "unpacking a pair"),
            Stmt::MapSet {
                map,
                key,
                value,
                span,
            } => self.map_set(*map, key, value, *span),
            Stmt::MapDelete { map, key, span } => self.map_delete(*map, key, *span),
            Stmt::VecAppend { vec, value, span } => self.vec_append(vec, value, *span),
            Stmt::Eval { value } => {
                if has_draw(value)
                    && let Some(c) = self.expr(value).and_then(|v| self.effects_only(v))
                {
                    self.line(&format!("(void)({c});"));
                }
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
            } => self.if_stmt(cond, then_block, else_block),
            Stmt::Switch {
                scrutinee,
                cases,
                default,
            } => self.switch(scrutinee, cases, default.as_ref()),
            Stmt::MatchOption {
                scrutinee,
                binding,
                some_block,
                none_block,
            } => self.match_option(scrutinee, *binding, some_block, none_block),
            Stmt::Send { action, span } => match action {
                Action::Forward => {
                    self.send_forward();
                }
                Action::Reject { reason } => {
                    let reason_text = match self.expr(reason) {
                        Some(CVal::Known(Value::Str(text))) => text,
                        Some(_) => {
                            self.unsupported(*span, "an error reason computed at run time");
                            String::new()
                        }
                        None => String::new(),
                    };
                    self.send("XDP_DROP", &format!("err('{reason_text}')"));
                }
            },
            Stmt::Opaque { span, feature, .. } => {
                self.unsupported(*span, &feature.construct);
            }
        }
    }

    fn send_forward(&mut self) {
        self.send("XDP_PASS", "forward");
    }

    fn send(&mut self, action: &str, what: &str) {
        if self.s.locked {
            self.line(&format!("action = {action};\t/* {what} */"));
            self.line("goto unlock;");
        } else {
            self.line(&format!("return {action};\t/* {what} */"));
        }
        self.env.live = false;
    }

    fn assign(&mut self, place: &Place, value: &Expr, span: Span) {
        match place {
            Place::State(id) => {
                if self.s.atomic_adds.contains(&span) {
                    return self.atomic_add(*id, value);
                }
                let Storage::Global(scalar) = self.storage(*id).clone() else {
                    return self.unsupported(span, "assigning this kind of state");
                };
                let name = self.state_name(*id).to_string();
                let Some(val) = self.expr(value) else { return };
                let key = ScaleVar::State(*id);
                if let Some((c, range)) = self.store_scalar(&val, &scalar.ty, key, span, &name) {
                    self.line(&format!("{name} = {c};"));
                    if let Some(range) = range {
                        self.env.ranges.insert(VarKey::State(id.0), range);
                    }
                }
            }
            Place::Local(id) => {
                let ty = self.s.handler.local(*id).ty.clone();
                let name = self.local_name(*id).to_string();
                let Some(val) = self.expr(value) else { return };
                if super::analysis::is_runtime_type(&ty) {
                    let key = ScaleVar::Local(*id);
                    if let Some((c, range)) = self.store_scalar(&val, &ty, key, span, &name) {
                        self.line(&format!("{name} = {c};"));
                        if let Some(range) = range {
                            self.env.ranges.insert(VarKey::Local(id.0), range);
                        }
                    }
                } else if let Type::Option(inner) = &ty
                    && super::analysis::is_runtime_type(inner)
                {
                    self.store_option(*id, inner, val, span);
                } else {
                    match val {
                        CVal::Known(v) => {
                            self.env.consts.insert(*id, Some(v));
                        }
                        _ => self.unsupported(span, &format!("a `{ty}` computed at run time")),
                    }
                }
            }
        }
    }

    fn store_option(&mut self, id: LocalId, inner: &Type, val: CVal, span: Span) {
        let name = self.local_name(id).to_string();
        let key = ScaleVar::Local(id);
        match val {
            CVal::Opt { some, value } => {
                if let Some((c, range)) = self.store_scalar(&value, inner, key, span, &name) {
                    self.line(&format!("{name}_some = {some};"));
                    self.line(&format!("{name} = {c};"));
                    if let Some(range) = range {
                        let joined = self
                            .env
                            .ranges
                            .get(&VarKey::Local(id.0))
                            .map_or(range.clone(), |r| r.join(&range));
                        self.env.ranges.insert(VarKey::Local(id.0), joined);
                    }
                }
            }
            CVal::Known(Value::Option(None)) => self.line(&format!("{name}_some = 0;")),
            CVal::Known(Value::Option(Some(v))) => {
                let value = self.known_scalar(&v, inner);
                if let Some(value) = value
                    && let Some((c, _)) = self.store_scalar(&value, inner, key, span, &name)
                {
                    self.line(&format!("{name}_some = 1;"));
                    self.line(&format!("{name} = {c};"));
                    self.env.ranges.remove(&VarKey::Local(id.0));
                }
            }
            _ => self.unsupported(span, "this optional value"),
        }
    }

    /// The C text of a scalar about to be stored in a variable of type `ty` (scale from `key`
    /// for floats), and the stored integer's range for floats.
    fn store_scalar(
        &mut self,
        val: &CVal,
        ty: &Type,
        key: ScaleVar,
        span: Span,
        name: &str,
    ) -> Option<(String, Option<Range>)> {
        match (val, ty) {
            (CVal::Float(lin), Type::Float) => {
                self.require_scale(key, &lin.scale, span);
                let scale = self.scale_of(key);
                if !scale.is_multiple_of(&lin.scale) {
                    // The fixed point is not reached yet; the next pass has the larger scale.
                    return Some(("0".to_string(), None));
                }
                let form = lin.at_scale(&scale);
                match form.materialize() {
                    Ok((c, range, _)) if range.fits_i64() => Some((c, Some(range))),
                    Ok((_, range, _)) | Err(linear::OutOfRange { range }) => {
                        self.error(
                            Code::NoExactInteger,
                            span,
                            format!(
                                "the value stored in `{name}` may not fit 64 bits at its scale {scale}"
                            ),
                            format!(
                                "as a fixed-point integer it can range over [{}, {}]; a signed 64-bit value holds [-2^63, 2^63-1] (bound it with min/max or a guard first)",
                                range.lo, range.hi
                            ),
                        );
                        None
                    }
                }
            }
            (CVal::Int { c, .. }, _) => Some((c.clone(), None)),
            (CVal::Known(v), _) => {
                let scalar = self.known_scalar(v, ty)?;
                self.store_scalar(&scalar, ty, key, span, name)
            }
            _ => {
                self.unsupported(span, &format!("storing this value into `{name}`"));
                None
            }
        }
    }

    fn known_scalar(&mut self, value: &Value, ty: &Type) -> Option<CVal> {
        Some(match (value, ty) {
            (Value::Int(v), _) => CVal::Int {
                c: c_int_literal(&BigInt::from(*v), true),
                ty: Type::Int,
            },
            (Value::Uint(v), _) => CVal::Int {
                c: c_int_literal(&BigInt::from(*v), false),
                ty: Type::Uint,
            },
            (Value::Instant(v), _) => CVal::Int {
                c: c_int_literal(&BigInt::from(*v), false),
                ty: Type::Instant,
            },
            (Value::Bool(v), _) => CVal::Int {
                c: if *v { "1" } else { "0" }.to_string(),
                ty: Type::Bool,
            },
            (Value::Float(v), _) => CVal::Float(Lin::constant(v)),
            _ => return None,
        })
    }

    fn atomic_add(&mut self, id: StateId, value: &Expr) {
        let ExprKind::Arith { lhs, rhs, .. } = &value.kind else {
            return;
        };
        let addend = if matches!(lhs.kind, ExprKind::State(s) if s == id) {
            rhs
        } else {
            lhs
        };
        let name = self.state_name(id).to_string();
        if let Some(CVal::Int { c, .. }) = self.expr(addend) {
            if self.s.addends == super::strategy::AddendPlace::Reloaded {
                // Nothing lives in r6-r9 across this point: the addend is loaded here, not
                // kept in a register the JIT must save (the strategy `addends=reloaded`).
                self.line("asm volatile(\"\" ::: \"r6\", \"r7\", \"r8\", \"r9\");");
            }
            // One atomic instruction: concurrent invocations never lose an update (§4.5).
            self.line(&format!("__sync_fetch_and_add(&{name}, {c});"));
        }
    }

    fn map_key_value(&mut self, map: StateId, span: Span) -> Option<(Codec, Codec)> {
        match self.storage(map).clone() {
            Storage::HashMap { key, value, .. } => Some((key, value)),
            _ => {
                self.unsupported(span, "writing this map");
                None
            }
        }
    }

    fn map_set(&mut self, map: StateId, key: &Expr, value: &Expr, span: Span) {
        let Some((key_scalar, value_scalar)) = self.map_key_value(map, span) else {
            return;
        };
        let name = self.state_name(map).to_string();
        let (Some(k), Some(v)) = (self.expr(key), self.expr(value)) else {
            return;
        };
        let k = self.store_scalar(&k, &key_scalar.ty, ScaleVar::MapValue(map), span, &name);
        let v = self.store_scalar(&v, &value_scalar.ty, ScaleVar::MapValue(map), span, &name);
        if let (Some((k, _)), Some((v, _))) = (k, v) {
            let (kt, vt) = (key_scalar.c_type(), value_scalar.c_type());
            self.line("{");
            self.indent += 1;
            self.line(&format!("{kt} key = {k};"));
            self.line(&format!("{vt} value = {v};"));
            self.line("");
            self.line("/* A full map refuses new keys; then nothing happens (§3.4). */");
            self.line(&format!(
                "bpf_map_update_elem(&{name}, &key, &value, BPF_ANY);"
            ));
            self.indent -= 1;
            self.line("}");
        }
    }

    fn map_delete(&mut self, map: StateId, key: &Expr, span: Span) {
        let Some((key_scalar, _)) = self.map_key_value(map, span) else {
            return;
        };
        let name = self.state_name(map).to_string();
        let Some(k) = self.expr(key) else { return };
        if let Some((k, _)) =
            self.store_scalar(&k, &key_scalar.ty, ScaleVar::MapValue(map), span, &name)
        {
            let kt = key_scalar.c_type();
            self.line("{");
            self.indent += 1;
            self.line(&format!("{kt} key = {k};"));
            self.line("");
            self.line(&format!("bpf_map_delete_elem(&{name}, &key);"));
            self.indent -= 1;
            self.line("}");
        }
    }

    fn vec_append(&mut self, vec: &VecRef, value: &Expr, span: Span) {
        let VecRef::State(id) = vec else {
            return self.unsupported(span, "appending to a vector held in a local");
        };
        let Storage::RingBuf { element } = self.storage(*id).clone() else {
            return self.unsupported(span, "appending to this vector");
        };
        let name = self.state_name(*id).to_string();
        let Some(v) = self.expr(value) else { return };
        if let Some((c, _)) =
            self.store_scalar(&v, &element.ty, ScaleVar::VecElement(*id), span, &name)
        {
            self.line("{");
            self.indent += 1;
            self.line(&format!("{} record = {c};", element.c_type()));
            self.line("");
            self.line(&format!(
                "bpf_ringbuf_output(&{name}, &record, sizeof(record), 0);"
            ));
            self.line(&format!("__sync_fetch_and_add(&{}, 1);", len_symbol(&name)));
            self.indent -= 1;
            self.line("}");
        }
    }

    fn if_stmt(&mut self, cond: &Expr, then_block: &Block, else_block: &Block) {
        let Some(cond) = self.cond(cond) else {
            self.env.live = false;
            return;
        };
        let base = self.env.clone();
        let mut then_env = base.clone();
        let mut else_env = base;
        for (var, range) in cond.narrow_true {
            then_env.ranges.insert(var, range);
        }
        for (var, range) in cond.narrow_false {
            else_env.ranges.insert(var, range);
        }
        match cond.constant {
            Some(true) => {
                let env = self.nested_inline(then_block, then_env);
                self.env = env;
            }
            Some(false) => {
                let env = self.nested_inline(else_block, else_env);
                self.env = env;
            }
            None => {
                self.line(&format!("if ({}) {{", cond.c));
                let then_env = self.nested(then_block, then_env);
                let else_env = if else_block.is_empty() {
                    self.line("}");
                    else_env
                } else {
                    self.line("} else {");
                    let env = self.nested(else_block, else_env);
                    self.line("}");
                    env
                };
                self.env = Env::join(vec![then_env, else_env]);
            }
        }
    }

    /// A block whose condition is decided at build time: its statements, unindented.
    fn nested_inline(&mut self, block: &Block, env: Env) -> Env {
        let saved = std::mem::replace(&mut self.env, env);
        self.block(block);
        std::mem::replace(&mut self.env, saved)
    }

    fn switch(&mut self, scrutinee: &Expr, cases: &[(Const, Block)], default: Option<&Block>) {
        let Some(value) = self.expr(scrutinee) else {
            self.env.live = false;
            return;
        };
        // Evaluate the scrutinee once: a draw in it must be taken exactly once.
        let value = match value {
            CVal::Int { c, ty } if has_draw(scrutinee) => {
                let tmp = self.fresh("match");
                self.line(&format!("{} {tmp} = {c};", c_type(&ty)));
                CVal::Int { c: tmp, ty }
            }
            CVal::Float(lin) if has_draw(scrutinee) => match lin.materialize() {
                Ok((c, range, signed)) => {
                    let tmp = self.fresh("match");
                    let ty = if signed { "__s64" } else { "__u64" };
                    self.line(&format!("{ty} {tmp} = {c};"));
                    CVal::Float(Lin::atom(
                        Atom::new(tmp, range, signed, None),
                        lin.scale.clone(),
                    ))
                }
                Err(_) => {
                    self.error(
                        Code::NoExactInteger,
                        scrutinee.span,
                        "this value has no exact 64-bit form to match on",
                        "assign it to a local through min/max first",
                    );
                    return;
                }
            },
            other => other,
        };
        let mut branches = Vec::new();
        let mut opened = 0;
        let mut decided = false;
        for (constant, block) in cases {
            let test = self.equals_const(&value, constant, scrutinee.span);
            let Some(test) = test else { return };
            match test {
                Some(false) => continue,
                Some(true) => {
                    if opened == 0 {
                        let env = self.nested_inline(block, self.env.clone());
                        self.env = env;
                        return;
                    }
                    self.line("} else {");
                    branches.push(self.nested(block, self.env.clone()));
                    decided = true;
                    break;
                }
                None => {}
            }
            let c = self.equals_c(&value, constant);
            if opened == 0 {
                self.line(&format!("if ({c}) {{"));
            } else {
                self.line(&format!("}} else if ({c}) {{"));
            }
            opened += 1;
            branches.push(self.nested(block, self.env.clone()));
        }
        if !decided {
            match default {
                Some(block) if opened == 0 => {
                    let env = self.nested_inline(block, self.env.clone());
                    self.env = env;
                    return;
                }
                Some(block) => {
                    self.line("} else {");
                    branches.push(self.nested(block, self.env.clone()));
                }
                None => branches.push(self.env.clone()),
            }
        }
        if opened > 0 {
            self.line("}");
        }
        self.env = Env::join(branches);
    }

    /// Whether `value == constant` is decided at build time: `Some(Some(b))`, or needs a test:
    /// `Some(None)`; `None` after a diagnostic.
    fn equals_const(&mut self, value: &CVal, constant: &Const, span: Span) -> Option<Option<bool>> {
        match (value, constant) {
            (CVal::Known(v), c) => Some(Some(*v == Value::from_const(c))),
            (CVal::Float(lin), Const::Float(c)) => {
                match linear::compare_with_zero(&lin.sub(&Lin::constant(c)), CmpOp::Eq) {
                    Ok(Decision::Always(b)) => Some(Some(b)),
                    Ok(Decision::Test { .. }) => Some(None),
                    Err(_) => {
                        self.error(
                            Code::NoExactInteger,
                            span,
                            "this value has no exact 64-bit form to match on",
                            "bound it with min/max first",
                        );
                        None
                    }
                }
            }
            (CVal::Int { .. }, _) => Some(None),
            _ => {
                self.unsupported(span, "matching on this value");
                None
            }
        }
    }

    fn equals_c(&mut self, value: &CVal, constant: &Const) -> String {
        match (value, constant) {
            (CVal::Float(lin), Const::Float(c)) => {
                match linear::compare_with_zero(&lin.sub(&Lin::constant(c)), CmpOp::Eq) {
                    Ok(Decision::Test { c, .. }) => c,
                    _ => "0".to_string(),
                }
            }
            (CVal::Int { c, .. }, k) => {
                let literal = match k {
                    Const::Int(v) => c_int_literal(&BigInt::from(*v), true),
                    Const::Uint(v) => c_int_literal(&BigInt::from(*v), false),
                    Const::Bool(v) => u8::from(*v).to_string(),
                    _ => "0".to_string(),
                };
                format!("{c} == {literal}")
            }
            _ => "0".to_string(),
        }
    }

    fn match_option(
        &mut self,
        scrutinee: &Expr,
        binding: Option<LocalId>,
        some_block: &Block,
        none_block: &Block,
    ) {
        let Some(value) = self.expr(scrutinee) else {
            self.env.live = false;
            return;
        };
        match value {
            CVal::Known(Value::Option(found)) => {
                let mut env = self.env.clone();
                let block = match found {
                    Some(inner) => {
                        if let Some(id) = binding {
                            self.bind_known(id, &inner, scrutinee.span, &mut env);
                        }
                        some_block
                    }
                    None => none_block,
                };
                let env = self.nested_inline(block, env);
                self.env = env;
            }
            CVal::Opt { some, value } => {
                self.line(&format!("if ({some}) {{"));
                self.indent += 1;
                let mut some_env = self.env.clone();
                if let Some(id) = binding {
                    let ty = self.s.handler.local(id).ty.clone();
                    let name = self.local_name(id).to_string();
                    if let Some((c, range)) =
                        self.store_scalar(&value, &ty, ScaleVar::Local(id), scrutinee.span, &name)
                    {
                        self.line(&format!("{name} = {c};"));
                        match range {
                            Some(range) => some_env.ranges.insert(VarKey::Local(id.0), range),
                            None => some_env.ranges.remove(&VarKey::Local(id.0)),
                        };
                    }
                }
                self.indent -= 1;
                let some_env = self.nested(some_block, some_env);
                let none_env = if none_block.is_empty() {
                    self.line("}");
                    self.env.clone()
                } else {
                    self.line("} else {");
                    let env = self.nested(none_block, self.env.clone());
                    self.line("}");
                    env
                };
                self.env = Env::join(vec![some_env, none_env]);
            }
            _ => {
                self.unsupported(scrutinee.span, "matching on this optional value");
                self.env.live = false;
            }
        }
    }

    fn bind_known(&mut self, id: LocalId, value: &Value, span: Span, env: &mut Env) {
        let ty = self.s.handler.local(id).ty.clone();
        if super::analysis::is_runtime_type(&ty) {
            let name = self.local_name(id).to_string();
            if let Some(scalar) = self.known_scalar(value, &ty)
                && let Some((c, range)) =
                    self.store_scalar(&scalar, &ty, ScaleVar::Local(id), span, &name)
            {
                self.line(&format!("{name} = {c};"));
                if let Some(range) = range {
                    env.ranges.insert(VarKey::Local(id.0), range);
                }
            }
        } else {
            env.consts.insert(id, Some(value.clone()));
        }
    }

    // ---- conditions ----

    fn cond(&mut self, expr: &Expr) -> Option<Cond> {
        if let Some(span) = unsequenced_draws(expr) {
            self.unsupported(
                span,
                "two random draws as operands of one operator (C does not fix which runs first)",
            );
            return None;
        }
        match &expr.kind {
            ExprKind::Compare { op, lhs, rhs } if lhs.ty == Type::Float => {
                let (Some(CVal::Float(a)), Some(CVal::Float(b))) = (self.expr(lhs), self.expr(rhs))
                else {
                    return None;
                };
                self.compare_floats(&a, &b, *op, expr.span)
            }
            ExprKind::And(lhs, rhs) => {
                let a = self.cond(lhs)?;
                let b = self.cond(rhs)?;
                Some(match (a.constant, b.constant) {
                    (Some(false), _) => a,
                    (Some(true), _) => b,
                    (_, Some(true)) => a,
                    // `r < 0.5 and r < 0.1`: the first adds nothing.
                    _ if b.implies(&a) => Cond {
                        narrow_true: a.narrow_true.into_iter().chain(b.narrow_true).collect(),
                        ..b
                    },
                    _ if a.implies(&b) => Cond {
                        narrow_true: a.narrow_true.into_iter().chain(b.narrow_true).collect(),
                        ..a
                    },
                    _ => Cond {
                        c: format!("({}) && ({})", a.c, b.c),
                        narrow_true: a.narrow_true.into_iter().chain(b.narrow_true).collect(),
                        narrow_false: Vec::new(),
                        constant: None,
                        exact: None,
                    },
                })
            }
            ExprKind::Or(lhs, rhs) => {
                let a = self.cond(lhs)?;
                let b = self.cond(rhs)?;
                Some(match (a.constant, b.constant) {
                    (Some(true), _) => a,
                    (Some(false), _) => b,
                    (_, Some(false)) => a,
                    _ => Cond {
                        c: format!("({}) || ({})", a.c, b.c),
                        narrow_true: Vec::new(),
                        narrow_false: a.narrow_false.into_iter().chain(b.narrow_false).collect(),
                        constant: None,
                        exact: None,
                    },
                })
            }
            _ => match self.expr(expr)? {
                CVal::Int { c, .. } => Some(Cond {
                    constant: match c.as_str() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    },
                    c,
                    narrow_true: Vec::new(),
                    narrow_false: Vec::new(),
                    exact: None,
                }),
                CVal::Known(Value::Bool(b)) => Some(Cond {
                    c: u8::from(b).to_string(),
                    constant: Some(b),
                    narrow_true: Vec::new(),
                    narrow_false: Vec::new(),
                    exact: None,
                }),
                _ => {
                    self.unsupported(expr.span, "this condition");
                    None
                }
            },
        }
    }

    fn compare_floats(&mut self, a: &Lin, b: &Lin, op: CmpOp, span: Span) -> Option<Cond> {
        let diff = a.sub(b);
        // Two run-time sides that each fit: compare them directly, which reads better and
        // cannot overflow a subtraction.
        if diff.terms.len() > 1 && !a.terms.is_empty() && !b.terms.is_empty() {
            let scale = a.scale.lcm(&b.scale);
            if let (Ok((ca, _, sa)), Ok((cb, _, sb))) = (
                a.at_scale(&scale).materialize(),
                b.at_scale(&scale).materialize(),
            ) && sa == sb
            {
                return Some(Cond {
                    c: format!("{ca} {} {cb}", op.symbol()),
                    narrow_true: Vec::new(),
                    narrow_false: Vec::new(),
                    constant: None,
                    exact: None,
                });
            }
        }
        let effects = diff.effects.clone();
        match linear::compare_with_zero(&diff, op) {
            Ok(Decision::Always(b)) if diff.all_effects().is_empty() => Some(Cond {
                c: u8::from(b).to_string(),
                constant: Some(b),
                narrow_true: Vec::new(),
                narrow_false: Vec::new(),
                exact: None,
            }),
            Ok(Decision::Always(b)) => Some(Cond {
                // Decided at build time, but the draws in it are still taken, in order.
                c: with_effects(&diff.all_effects(), &u8::from(b).to_string()),
                constant: None,
                narrow_true: Vec::new(),
                narrow_false: Vec::new(),
                exact: None,
            }),
            Ok(Decision::Test { c, narrowed }) => {
                let (mut yes, mut no) = (Vec::new(), Vec::new());
                if let Some((var, t, f)) = narrowed {
                    if let Some(t) = t {
                        yes.push((var, t));
                    }
                    if let Some(f) = f {
                        no.push((var, f));
                    }
                }
                let exact = match yes.as_slice() {
                    [only] if diff.all_effects().is_empty() => Some(only.clone()),
                    _ => None,
                };
                Some(Cond {
                    c: with_effects(&effects, &c),
                    narrow_true: yes,
                    narrow_false: no,
                    constant: None,
                    exact,
                })
            }
            Err(linear::OutOfRange { range }) => {
                self.error(
                    Code::NoExactInteger,
                    span,
                    "this comparison has no exact 64-bit integer form",
                    format!(
                        "the difference of the two sides, as a fixed-point integer, ranges over [{}, {}]",
                        range.lo, range.hi
                    ),
                );
                None
            }
        }
    }

    // ---- expressions ----

    fn effects_only(&mut self, value: CVal) -> Option<String> {
        match value {
            CVal::Int { c, .. } => Some(c),
            CVal::Float(lin) => Some(match lin.materialize() {
                Ok((c, _, _)) => c,
                Err(_) => with_effects(
                    &lin.terms
                        .iter()
                        .filter(|t| !t.atom.pure)
                        .map(|t| t.atom.c.clone())
                        .collect::<Vec<_>>(),
                    "0",
                ),
            }),
            _ => None,
        }
    }

    fn draw(&mut self) -> String {
        match self.s.draws {
            Draws::Inline => self.s.draw_call.to_string(),
            Draws::Queue(n) => {
                // The next of the values drawn before the lock, in order.
                let mut c = "({ __u32 sb_d = sb_q0; ".to_string();
                for i in 1..n {
                    let _ = write!(c, "sb_q{} = sb_q{}; ", i - 1, i);
                }
                c.push_str("sb_d; })");
                c
            }
        }
    }

    fn expr(&mut self, expr: &Expr) -> Option<CVal> {
        if let Some(span) = unsequenced_draws(expr) {
            self.unsupported(
                span,
                "two random draws as operands of one operator (C does not fix which runs first)",
            );
            return None;
        }
        self.expr_inner(expr)
    }

    fn expr_inner(&mut self, expr: &Expr) -> Option<CVal> {
        let span = expr.span;
        Some(match &expr.kind {
            ExprKind::Const(c) => match c {
                Const::Int(v) => CVal::Int {
                    c: c_int_literal(&BigInt::from(*v), true),
                    ty: Type::Int,
                },
                Const::Uint(v) => CVal::Int {
                    c: c_int_literal(&BigInt::from(*v), false),
                    ty: Type::Uint,
                },
                Const::Bool(v) => CVal::Int {
                    c: u8::from(*v).to_string(),
                    ty: Type::Bool,
                },
                Const::Float(v) => CVal::Float(Lin::constant(v)),
                Const::Str(s) => CVal::Known(Value::Str(s.clone())),
            },
            ExprKind::State(id) => self.read_state(*id, span)?,
            ExprKind::Local(id) => self.read_local(*id, span)?,
            ExprKind::Arith { op, lhs, rhs } => {
                let a = self.expr_inner(lhs)?;
                let b = self.expr_inner(rhs)?;
                self.arith(*op, a, b, span)?
            }
            ExprKind::Compare { op, lhs, rhs } => {
                if lhs.ty == Type::Float {
                    let cond = self.cond(expr)?;
                    CVal::Int {
                        c: cond.c,
                        ty: Type::Bool,
                    }
                } else {
                    let a = self.expr_inner(lhs)?;
                    let b = self.expr_inner(rhs)?;
                    match (a, b) {
                        (CVal::Int { c: ca, .. }, CVal::Int { c: cb, .. }) => CVal::Int {
                            c: format!("({ca} {} {cb})", op.symbol()),
                            ty: Type::Bool,
                        },
                        (CVal::Known(a), CVal::Known(b)) => {
                            let result = match op {
                                CmpOp::Eq => a == b,
                                CmpOp::Ne => a != b,
                                CmpOp::Lt => a < b,
                                CmpOp::Le => a <= b,
                                CmpOp::Gt => a > b,
                                CmpOp::Ge => a >= b,
                            };
                            CVal::Int {
                                c: u8::from(result).to_string(),
                                ty: Type::Bool,
                            }
                        }
                        _ => {
                            self.unsupported(span, "comparing these values");
                            return None;
                        }
                    }
                }
            }
            ExprKind::And(..) | ExprKind::Or(..) => {
                let cond = self.cond(expr)?;
                CVal::Int {
                    c: cond.c,
                    ty: Type::Bool,
                }
            }
            ExprKind::MinMax { op, lhs, rhs } => {
                let a = self.expr_inner(lhs)?;
                let b = self.expr_inner(rhs)?;
                self.min_max(*op, a, b, span)?
            }
            ExprKind::ToFloat(inner) => {
                let CVal::Int { c, ty } = self.expr_inner(inner)? else {
                    self.unsupported(span, "this conversion");
                    return None;
                };
                let (range, signed) = if matches!(inner.kind, ExprKind::PayloadLen) {
                    (Range::new(0, PAYLOAD_MAX), true)
                } else if ty == Type::Uint {
                    (Range::u64(), false)
                } else {
                    (Range::i64(), true)
                };
                CVal::Float(Lin::atom(Atom::new(c, range, signed, None), BigInt::one()))
            }
            ExprKind::InstantSeconds(inner) => {
                let CVal::Int { c, .. } = self.expr_inner(inner)? else {
                    return None;
                };
                CVal::Float(Lin::atom(Atom::new(c, Range::u64(), false, None), nanos()))
            }
            ExprKind::Randomf { lo, hi } => {
                let (Some(CVal::Float(lo_lin)), Some(CVal::Float(hi_lin))) =
                    (self.expr_inner(lo), self.expr_inner(hi))
                else {
                    return None;
                };
                let (Some(lo_v), Some(hi_v)) = (lo_lin.as_constant(), hi_lin.as_constant()) else {
                    self.unsupported(span, "randomf with bounds computed at run time");
                    return None;
                };
                let draw = self.draw();
                let mut atom = Atom::new(draw, Range::new(0u64, u64::from(u32::MAX)), false, None);
                atom.pure = false;
                atom.id = self.tmp + 1;
                self.tmp += 1;
                let u = Lin::atom(atom, BigInt::one() << 32);
                CVal::Float(u.mul_const(&(hi_v - &lo_v)).add(&Lin::constant(&lo_v)))
            }
            ExprKind::Now => CVal::Int {
                c: "now".to_string(),
                ty: Type::Instant,
            },
            ExprKind::TimeDiff(a, b) => {
                if matches!(a.kind, ExprKind::Now) {
                    if matches!(b.kind, ExprKind::Now) {
                        return Some(CVal::Float(Lin::constant(&BigRational::zero())));
                    }
                    let CVal::Int { c, .. } = self.expr_inner(b)? else {
                        return None;
                    };
                    // Time never goes backwards (§3.3): a stored Instant is at most `now`, so
                    // the difference is a non-negative 64-bit number of nanoseconds.
                    let atom = Atom::new(format!("(now - {c})"), Range::u64(), false, None);
                    CVal::Float(Lin::atom(atom, nanos()))
                } else {
                    let (Some(CVal::Int { c: ca, .. }), Some(CVal::Int { c: cb, .. })) =
                        (self.expr_inner(a), self.expr_inner(b))
                    else {
                        return None;
                    };
                    let la = Lin::atom(Atom::new(ca, Range::u64(), false, None), nanos());
                    let lb = Lin::atom(Atom::new(cb, Range::u64(), false, None), nanos());
                    CVal::Float(la.sub(&lb))
                }
            }
            ExprKind::MapGet { map, key } => self.map_get(*map, key, span)?,
            ExprKind::PayloadLen => CVal::Int {
                c: "payload_len".to_string(),
                ty: Type::Int,
            },
            ExprKind::VecSize(VecRef::State(id)) => match self.storage(*id).clone() {
                Storage::Folded(Value::Vec(len)) => CVal::Int {
                    c: c_int_literal(&BigInt::from(len as i64), true),
                    ty: Type::Int,
                },
                Storage::RingBuf { .. } => CVal::Int {
                    c: format!("(__s64){}", len_symbol(self.state_name(*id))),
                    ty: Type::Int,
                },
                _ => {
                    self.unsupported(span, "this vector");
                    return None;
                }
            },
            ExprKind::VecSize(VecRef::Local(_)) => {
                self.unsupported(span, "the size of a vector held in a local");
                return None;
            }
            ExprKind::Pair(..) => {
                self.unsupported(span, "a pair");
                return None;
            }
            ExprKind::Opaque { feature, .. } => {
                self.unsupported(span, &feature.construct);
                return None;
            }
        })
    }

    fn read_state(&mut self, id: StateId, span: Span) -> Option<CVal> {
        let name = self.state_name(id).to_string();
        match self.storage(id).clone() {
            Storage::Folded(value) => match &value {
                Value::Int(_)
                | Value::Uint(_)
                | Value::Instant(_)
                | Value::Bool(_)
                | Value::Float(_) => {
                    self.known_scalar(&value, &self.s.program.state_var(id).ty.clone())
                }
                _ => Some(CVal::Known(value)),
            },
            Storage::Global(scalar) => Some(match scalar.ty {
                Type::Float => {
                    let range = self
                        .env
                        .ranges
                        .get(&VarKey::State(id.0))
                        .cloned()
                        .unwrap_or_else(Range::i64);
                    let atom = Atom::new(name, range, true, Some(VarKey::State(id.0)));
                    CVal::Float(Lin::atom(atom, self.scale_of(ScaleVar::State(id))))
                }
                Type::Bool => CVal::Int {
                    c: format!("({name} != 0)"),
                    ty: Type::Bool,
                },
                ty => CVal::Int { c: name, ty },
            }),
            _ => {
                self.unsupported(span, &format!("reading `{name}` as a whole"));
                None
            }
        }
    }

    fn read_local(&mut self, id: LocalId, span: Span) -> Option<CVal> {
        let local = self.s.handler.local(id);
        let name = self.local_name(id).to_string();
        let ty = local.ty.clone();
        if super::analysis::is_runtime_type(&ty) {
            return Some(self.local_scalar(id, &name, &ty));
        }
        if let Type::Option(inner) = &ty
            && super::analysis::is_runtime_type(inner)
        {
            let value = self.local_scalar(id, &name, inner);
            return Some(CVal::Opt {
                some: format!("{name}_some"),
                value: Box::new(value),
            });
        }
        match self.env.consts.get(&id) {
            Some(Some(value)) => Some(CVal::Known(value.clone())),
            _ => {
                self.unsupported(span, &format!("a `{ty}` that differs between paths"));
                None
            }
        }
    }

    fn local_scalar(&self, id: LocalId, name: &str, ty: &Type) -> CVal {
        match ty {
            Type::Float => {
                let range = self
                    .env
                    .ranges
                    .get(&VarKey::Local(id.0))
                    .cloned()
                    .unwrap_or_else(Range::i64);
                let atom = Atom::new(name, range, true, Some(VarKey::Local(id.0)));
                CVal::Float(Lin::atom(atom, self.scale_of(ScaleVar::Local(id))))
            }
            ty => CVal::Int {
                c: name.to_string(),
                ty: ty.clone(),
            },
        }
    }

    fn map_get(&mut self, map: StateId, key: &Expr, span: Span) -> Option<CVal> {
        let key_val = self.expr_inner(key)?;
        match self.storage(map).clone() {
            Storage::Folded(Value::Map(entries)) => {
                let CVal::Known(k) = key_val.clone() else {
                    // A constant map read with a run-time key: a chain of comparisons.
                    return self.folded_lookup(&entries, key_val, span);
                };
                Some(CVal::Known(Value::Option(
                    entries.get(&k).cloned().map(Box::new),
                )))
            }
            Storage::HashMap {
                key: ks, value: vs, ..
            } => {
                if has_draw(key) {
                    self.unsupported(span, "a map key that draws a random number");
                    return None;
                }
                let name = self.state_name(map).to_string();
                let (k, _) =
                    self.store_scalar(&key_val, &ks.ty, ScaleVar::MapValue(map), span, &name)?;
                let tmp = self.fresh("found");
                let (kt, vt) = (ks.c_type(), vs.c_type());
                // A lookup only reads, so taking it before the statement that uses it is safe.
                self.line(&format!("__u8 {tmp}_some = 0;"));
                self.line(&format!("{vt} {tmp} = 0;"));
                self.line("{");
                self.indent += 1;
                self.line(&format!("{kt} key = {k};"));
                self.line(&format!(
                    "{vt} *value = bpf_map_lookup_elem(&{name}, &key);"
                ));
                self.line("");
                self.line("if (value) {");
                self.line(&format!("\t{tmp}_some = 1;"));
                self.line(&format!("\t{tmp} = *value;"));
                self.line("}");
                self.indent -= 1;
                self.line("}");
                let value = match vs.ty {
                    Type::Float => {
                        let atom = Atom::new(tmp.clone(), Range::i64(), true, None);
                        CVal::Float(Lin::atom(atom, self.scale_of(ScaleVar::MapValue(map))))
                    }
                    Type::Bool => CVal::Int {
                        c: format!("({tmp} != 0)"),
                        ty: Type::Bool,
                    },
                    ty => CVal::Int { c: tmp.clone(), ty },
                };
                Some(CVal::Opt {
                    some: format!("{tmp}_some"),
                    value: Box::new(value),
                })
            }
            _ => {
                self.unsupported(span, "reading this map");
                None
            }
        }
    }

    fn folded_lookup(
        &mut self,
        entries: &std::collections::BTreeMap<Value, Value>,
        key: CVal,
        span: Span,
    ) -> Option<CVal> {
        let CVal::Int { c: key_c, .. } = key else {
            self.unsupported(span, "this key of a constant map");
            return None;
        };
        let mut some = Vec::new();
        let mut value = String::from("0");
        let mut value_ty = None;
        for (k, v) in entries.iter().rev() {
            let (Some(CVal::Int { c: kc, .. }), Some(CVal::Int { c: vc, ty })) = (
                self.known_scalar(k, &Type::Int),
                self.known_scalar(v, &Type::Int),
            ) else {
                self.unsupported(span, "a run-time key into a constant map of this type");
                return None;
            };
            some.push(format!("{key_c} == {kc}"));
            value = format!("({key_c} == {kc} ? {vc} : {value})");
            value_ty = Some(ty);
        }
        Some(CVal::Opt {
            some: if some.is_empty() {
                "0".to_string()
            } else {
                format!("({})", some.join(" || "))
            },
            value: Box::new(CVal::Int {
                c: value,
                ty: value_ty.unwrap_or(Type::Int),
            }),
        })
    }

    fn arith(&mut self, op: ArithOp, a: CVal, b: CVal, span: Span) -> Option<CVal> {
        match (a, b) {
            (CVal::Int { c: ca, ty }, CVal::Int { c: cb, .. }) => {
                let signed = ty == Type::Int;
                let c = match (op, signed) {
                    (ArithOp::Div, true) => {
                        self.result.helpers.div_s64 = true;
                        format!("sb_div_s64({ca}, {cb})")
                    }
                    (ArithOp::Div, false) => {
                        self.result.helpers.div_u64 = true;
                        format!("sb_div_u64({ca}, {cb})")
                    }
                    // Signed overflow is undefined in C; unsigned arithmetic wraps exactly as
                    // the language's `int` does.
                    (op, true) => format!("(__s64)((__u64){ca} {} (__u64){cb})", arith_text(op)),
                    (op, false) => format!("({ca} {} {cb})", arith_text(op)),
                };
                Some(CVal::Int { c, ty })
            }
            (CVal::Float(a), CVal::Float(b)) => Some(CVal::Float(match op {
                ArithOp::Add => a.add(&b),
                ArithOp::Sub => a.sub(&b),
                ArithOp::Mul => match (a.as_constant(), b.as_constant()) {
                    (Some(k), _) => b.mul_const(&k),
                    (_, Some(k)) => a.mul_const(&k),
                    _ => {
                        self.error(
                            Code::NoExactInteger,
                            span,
                            "a product of two floats computed at run time has no exact 64-bit form",
                            "one side of `*` must be known at build time (a constant or a state variable only `init` writes)",
                        );
                        return None;
                    }
                },
                ArithOp::Div => match b.as_constant() {
                    Some(k) if k.is_zero() => {
                        // Dividing by zero gives 0 (§3.3); the dividend's draws still happen.
                        let mut zero = Lin::constant(&BigRational::zero());
                        zero.effects = a.all_effects();
                        zero
                    }
                    Some(k) => a.mul_const(&k.recip()),
                    None => {
                        self.error(
                            Code::NoExactInteger,
                            span,
                            "dividing by a float computed at run time has no exact integer form",
                            "the divisor must be known at build time",
                        );
                        return None;
                    }
                },
            })),
            _ => {
                self.unsupported(span, "this arithmetic");
                None
            }
        }
    }

    fn min_max(&mut self, op: MinMax, a: CVal, b: CVal, span: Span) -> Option<CVal> {
        match (a, b) {
            (CVal::Int { c: ca, ty }, CVal::Int { c: cb, .. }) => {
                let t = c_type(&ty);
                let pick = if op == MinMax::Min { "<" } else { ">" };
                Some(CVal::Int {
                    c: format!(
                        "({{ {t} sb_a = {ca}, sb_b = {cb}; sb_a {pick} sb_b ? sb_a : sb_b; }})"
                    ),
                    ty,
                })
            }
            (CVal::Float(a), CVal::Float(b)) => {
                if let (Some(x), Some(y)) = (a.as_constant(), b.as_constant()) {
                    let v = if (op == MinMax::Min) == (x <= y) {
                        x
                    } else {
                        y
                    };
                    return Some(CVal::Float(Lin::constant(&v)));
                }
                let scale = a.scale.lcm(&b.scale);
                let (a, b) = (a.at_scale(&scale), b.at_scale(&scale));
                if let (Ok((ca, ra, sa)), Ok((cb, rb, sb))) = (a.materialize(), b.materialize())
                    && sa == sb
                {
                    let t = if sa { "__s64" } else { "__u64" };
                    let pick = if op == MinMax::Min { "<" } else { ">" };
                    let range = if op == MinMax::Min {
                        Range::new((&ra.lo).min(&rb.lo).clone(), (&ra.hi).min(&rb.hi).clone())
                    } else {
                        Range::new((&ra.lo).max(&rb.lo).clone(), (&ra.hi).max(&rb.hi).clone())
                    };
                    let c = format!(
                        "({{ {t} sb_a = {ca}, sb_b = {cb}; sb_a {pick} sb_b ? sb_a : sb_b; }})"
                    );
                    return Some(CVal::Float(Lin::atom(Atom::new(c, range, sa, None), scale)));
                }
                if op == MinMax::Min
                    && let Some(capped) =
                        self.add_capped(&a, &b).or_else(|| self.add_capped(&b, &a))
                {
                    return Some(CVal::Float(capped));
                }
                self.error(
                    Code::NoExactInteger,
                    span,
                    format!(
                        "this {} has no exact 64-bit integer form",
                        if op == MinMax::Min { "min" } else { "max" }
                    ),
                    "an operand may leave 64 bits; the supported saturating form is min(constant, x + k * t) with k > 0 and t >= 0 (a token-bucket refill)",
                );
                // Keep the scale flowing: a later pass with finer scales for the variables
                // may find the exact form, and only the final pass's errors count.
                Some(CVal::Float(Lin::atom(
                    Atom::new("0", Range::i64(), true, None),
                    scale,
                )))
            }
            _ => {
                self.unsupported(span, "min/max of these values");
                None
            }
        }
    }

    /// `min(cap, x + k·t)` with `cap` constant, `k > 0`, `t ≥ 0`, exact for every stored `x`
    /// even where `x + k·t` leaves 64 bits: fill to the cap when `x ≥ cap` or when
    /// `t ≥ ceil((cap − x) / k)` (CHECKER-NOTES.md §2).
    fn add_capped(&mut self, cap: &Lin, sum: &Lin) -> Option<Lin> {
        let cap_value = cap.as_constant()?;
        if !cap.effects.is_empty() || !sum.effects.is_empty() {
            return None;
        }
        let scale = sum.scale.clone();
        let cap_scaled = &cap_value * BigRational::from_integer(scale.clone());
        if !cap_scaled.is_integer() {
            return None;
        }
        let cap_int = cap_scaled.to_integer();
        if !Range::point(cap_int.clone()).fits_i64() {
            return None;
        }
        let index = sum.terms.iter().position(|term| {
            term.coef.is_positive() && term.atom.range.lo >= BigInt::zero() && term.atom.pure
        })?;
        let t = &sum.terms[index];
        if !t.atom.range.fits_u64() || t.coef > BigInt::from(u64::MAX) {
            return None;
        }
        let rest = Lin {
            terms: sum
                .terms
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, term)| term.clone())
                .collect(),
            k: sum.k.clone(),
            scale: scale.clone(),
            effects: Vec::new(),
        };
        if rest.terms.iter().any(|term| !term.atom.pure) {
            return None;
        }
        let (x, x_range, x_signed) = rest.materialize().ok()?;
        if !x_range.fits_i64() {
            return None;
        }
        let x = if x_signed { x } else { format!("(__s64){x}") };
        let t_c = if t.atom.signed {
            format!("(__u64){}", t.atom.c)
        } else {
            t.atom.c.clone()
        };
        self.result.helpers.add_capped = true;
        let c = format!(
            "sb_add_capped({x}, {t_c}, {}, {})",
            linear::c_int_literal(&t.coef, false),
            linear::c_int_literal(&cap_int, true)
        );
        let lo_sum = &x_range.lo + &t.coef * &t.atom.range.lo;
        let range = Range::new(
            lo_sum.min(cap_int.clone()),
            cap_int
                .clone()
                .min(&x_range.hi + &t.coef * &t.atom.range.hi),
        );
        Some(Lin::atom(Atom::new(c, range, true, None), scale))
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
