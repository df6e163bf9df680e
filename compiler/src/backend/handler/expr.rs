//! Expressions: values as C (integers), integer linear forms (floats), build-time
//! constants or optional scalars; state, map and vector reads; arithmetic, `min`/`max`.

use super::*;

impl Gen<'_> {
    pub(super) fn effects_only(&mut self, value: CVal) -> Option<String> {
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

    pub(super) fn draw(&mut self) -> String {
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

    pub(super) fn expr(&mut self, expr: &Expr) -> Option<CVal> {
        if let Some(span) = unsequenced_draws(expr) {
            self.unsupported(
                span,
                "two random draws as operands of one operator (C does not fix which runs first)",
            );
            return None;
        }
        self.expr_inner(expr)
    }

    pub(super) fn expr_inner(&mut self, expr: &Expr) -> Option<CVal> {
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

    pub(super) fn read_state(&mut self, id: StateId, span: Span) -> Option<CVal> {
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

    pub(super) fn read_local(&mut self, id: LocalId, span: Span) -> Option<CVal> {
        let local = self.s.handler.local(id);
        let name = self.local_name(id).to_string();
        let ty = local.ty.clone();
        if crate::backend::analysis::is_runtime_type(&ty) {
            return Some(self.local_scalar(id, &name, &ty));
        }
        if let Type::Option(inner) = &ty
            && crate::backend::analysis::is_runtime_type(inner)
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

    pub(super) fn local_scalar(&self, id: LocalId, name: &str, ty: &Type) -> CVal {
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

    pub(super) fn map_get(&mut self, map: StateId, key: &Expr, span: Span) -> Option<CVal> {
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

    pub(super) fn folded_lookup(
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

    pub(super) fn arith(&mut self, op: ArithOp, a: CVal, b: CVal, span: Span) -> Option<CVal> {
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

    pub(super) fn min_max(&mut self, op: MinMax, a: CVal, b: CVal, span: Span) -> Option<CVal> {
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
    pub(super) fn add_capped(&mut self, cap: &Lin, sum: &Lin) -> Option<Lin> {
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
