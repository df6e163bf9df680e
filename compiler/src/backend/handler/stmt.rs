//! Statements: assignments, state and map updates, vector appends, `if`, `match` and
//! `send`, each as C lines, with the value ranges each branch learns.

use super::cond::Cond;
use super::*;
use crate::backend::strategy::VerdictShape;

impl Gen<'_> {
    pub(super) fn block(&mut self, block: &Block) {
        for stmt in block {
            if !self.env.live {
                break;
            }
            self.stmt(stmt);
        }
    }

    pub(super) fn nested(&mut self, block: &Block, env: Env) -> Env {
        let saved = std::mem::replace(&mut self.env, env);
        self.indent += 1;
        self.block(block);
        self.indent -= 1;
        std::mem::replace(&mut self.env, saved)
    }

    pub(super) fn stmt(&mut self, stmt: &Stmt) {
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

    pub(super) fn send_forward(&mut self) {
        self.send("XDP_PASS", "forward");
    }

    pub(super) fn send(&mut self, action: &str, what: &str) {
        if self.s.locked {
            self.line(&format!("action = {action};\t/* {what} */"));
            self.line("goto unlock;");
        } else {
            self.line(&format!("return {action};\t/* {what} */"));
        }
        self.env.live = false;
    }

    pub(super) fn assign(&mut self, place: &Place, value: &Expr, span: Span) {
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
                if crate::backend::analysis::is_runtime_type(&ty) {
                    let key = ScaleVar::Local(*id);
                    if let Some((c, range)) = self.store_scalar(&val, &ty, key, span, &name) {
                        self.line(&format!("{name} = {c};"));
                        if let Some(range) = range {
                            self.env.ranges.insert(VarKey::Local(id.0), range);
                        }
                    }
                } else if let Type::Option(inner) = &ty
                    && crate::backend::analysis::is_runtime_type(inner)
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

    pub(super) fn store_option(&mut self, id: LocalId, inner: &Type, val: CVal, span: Span) {
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
    pub(super) fn store_scalar(
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

    pub(super) fn known_scalar(&mut self, value: &Value, ty: &Type) -> Option<CVal> {
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

    pub(super) fn atomic_add(&mut self, id: StateId, value: &Expr) {
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
            if self.s.addends == crate::backend::strategy::AddendPlace::Reloaded {
                // Nothing lives in r6-r9 across this point: the addend is loaded here, not
                // kept in a register the JIT must save (the strategy `addends=reloaded`).
                self.line("asm volatile(\"\" ::: \"r6\", \"r7\", \"r8\", \"r9\");");
            }
            // One atomic instruction: concurrent invocations never lose an update (§4.5).
            self.line(&format!("__sync_fetch_and_add(&{name}, {c});"));
        }
    }

    pub(super) fn map_key_value(&mut self, map: StateId, span: Span) -> Option<(Codec, Codec)> {
        match self.storage(map).clone() {
            Storage::HashMap { key, value, .. } => Some((key, value)),
            _ => {
                self.unsupported(span, "writing this map");
                None
            }
        }
    }

    pub(super) fn map_set(&mut self, map: StateId, key: &Expr, value: &Expr, span: Span) {
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

    pub(super) fn map_delete(&mut self, map: StateId, key: &Expr, span: Span) {
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

    pub(super) fn vec_append(&mut self, vec: &VecRef, value: &Expr, span: Span) {
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

    pub(super) fn if_stmt(&mut self, cond: &Expr, then_block: &Block, else_block: &Block) {
        let Some(cond) = self.cond(cond) else {
            self.env.live = false;
            return;
        };
        if let Some(verdict) = self.arithmetic_verdict(&cond, then_block, else_block) {
            self.line(&verdict);
            self.env.live = false;
            return;
        }
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

    /// `verdicts=arithmetic` (`strategy.rs`): the return that replaces `if (r < K) reject
    /// else forward` (or the arms the other way round), when the test and both arms have
    /// that shape.
    fn arithmetic_verdict(
        &mut self,
        cond: &Cond,
        then_block: &Block,
        else_block: &Block,
    ) -> Option<String> {
        if self.s.verdicts != VerdictShape::Arithmetic || self.s.locked {
            return None;
        }
        let (reject_when_below, reason) = match (then_block.as_slice(), else_block.as_slice()) {
            (
                [
                    Stmt::Send {
                        action: Action::Reject { reason },
                        ..
                    },
                ],
                [
                    Stmt::Send {
                        action: Action::Forward,
                        ..
                    },
                ],
            ) => (true, reason),
            (
                [
                    Stmt::Send {
                        action: Action::Forward,
                        ..
                    },
                ],
                [
                    Stmt::Send {
                        action: Action::Reject { reason },
                        ..
                    },
                ],
            ) => (false, reason),
            _ => return None,
        };
        let (VarKey::Local(index), below) = cond.exact.clone()? else {
            return None;
        };
        let known = self.env.ranges.get(&VarKey::Local(index))?.clone();
        // `r < K` for an `r` in [0, 2⁶³): then `(u64)r − K` borrows exactly when it holds.
        let is_below = below.lo == known.lo && below.hi < known.hi;
        let fits = known.lo >= BigInt::zero() && known.hi < BigInt::from(1u64 << 63);
        if !is_below || !fits {
            return None;
        }
        let Some(CVal::Known(Value::Str(reason))) = self.expr(reason) else {
            return None;
        };
        let name = self.local_name(LocalId(index)).to_string();
        let k = &below.hi + 1;
        let borrow = format!("(((__u64){name} - {k}ULL) >> 63)");
        Some(if reject_when_below {
            format!(
                "return XDP_PASS - {borrow};\t/* err('{reason}') when {name} < {k}, else forward */"
            )
        } else {
            format!(
                "return XDP_DROP + {borrow};\t/* forward when {name} < {k}, else err('{reason}') */"
            )
        })
    }

    /// A block whose condition is decided at build time: its statements, unindented.
    pub(super) fn nested_inline(&mut self, block: &Block, env: Env) -> Env {
        let saved = std::mem::replace(&mut self.env, env);
        self.block(block);
        std::mem::replace(&mut self.env, saved)
    }

    pub(super) fn switch(
        &mut self,
        scrutinee: &Expr,
        cases: &[(Const, Block)],
        default: Option<&Block>,
    ) {
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
    pub(super) fn equals_const(
        &mut self,
        value: &CVal,
        constant: &Const,
        span: Span,
    ) -> Option<Option<bool>> {
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

    pub(super) fn equals_c(&mut self, value: &CVal, constant: &Const) -> String {
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

    pub(super) fn match_option(
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

    pub(super) fn bind_known(&mut self, id: LocalId, value: &Value, span: Span, env: &mut Env) {
        let ty = self.s.handler.local(id).ty.clone();
        if crate::backend::analysis::is_runtime_type(&ty) {
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
}
