//! Conditions: a branch's test as C, with what it says of one variable's range when it
//! holds and when it does not, so a branch can narrow and a conjunct another implies can go.

use super::*;

pub(super) struct Cond {
    pub(super) c: String,
    pub(super) narrow_true: Vec<(VarKey, Range)>,
    pub(super) narrow_false: Vec<(VarKey, Range)>,
    /// `Some(v)` when the condition is `v` for every input and evaluating it has no effect.
    pub(super) constant: Option<bool>,
    /// `Some((var, range))` when the condition, which has no effect, holds exactly when the
    /// variable is in the range: another condition that implies this makes it redundant.
    pub(super) exact: Option<(VarKey, Range)>,
}

impl Cond {
    /// `self && other`, both decided at run time. What holds when both do is what either
    /// says; a conjunct the other implies adds nothing (`r < 0.5 and r < 0.1`).
    fn and(self, other: Cond) -> Cond {
        let keep_other = other.implies(&self);
        let keep_self = !keep_other && self.implies(&other);
        let narrow_true = self
            .narrow_true
            .iter()
            .chain(&other.narrow_true)
            .cloned()
            .collect();
        match (keep_self, keep_other) {
            (_, true) => Cond {
                narrow_true,
                ..other
            },
            (true, _) => Cond {
                narrow_true,
                ..self
            },
            _ => Cond {
                c: format!("({}) && ({})", self.c, other.c),
                narrow_true,
                narrow_false: Vec::new(),
                constant: None,
                exact: None,
            },
        }
    }

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

impl Gen<'_> {
    pub(super) fn cond(&mut self, expr: &Expr) -> Option<Cond> {
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
                    _ => a.and(b),
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

    pub(super) fn compare_floats(
        &mut self,
        a: &Lin,
        b: &Lin,
        op: CmpOp,
        span: Span,
    ) -> Option<Cond> {
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
}
