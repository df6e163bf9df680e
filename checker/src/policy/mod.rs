//! The IR's `req` handler encoded over the shared inputs with the exact semantics of
//! LANGUAGE.md §3: integers as 64-bit vectors (they wrap), floats as exact rationals — a wide
//! signed numerator over a constant denominator — and every effect guarded by the condition
//! under which it happens (no path enumeration: one term per observable).

mod sym;

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_traits::One;
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::{
    Action, ArithOp, Block, CmpOp, Expr, ExprKind, Handler, MinMax, Place as IrPlace, Program,
    StateId, Stmt, Type, VecRef,
};
use z3::ast::{Array, BV, Bool};

use crate::symexec::Inputs;
use simplebpf_compiler::contract::{Place, VarPlace};

use sym::*;
pub use sym::{Sym, Unsupported, read_global, scale_by, widen};

/// What the policy does, as terms over the inputs.
#[derive(Debug, Clone)]
pub struct PolicyOutcome {
    pub drop: Bool,
    /// Final value of every state variable (by index); maps as their arrays.
    pub vars: Vec<Option<Sym>>,
    pub maps: BTreeMap<String, (Array, Array)>,
    /// `(when, vector, value)` of each append, in program order.
    pub records: Vec<(Bool, String, Sym)>,
    /// `(map, key)` of every map access, as the program stores the key.
    pub map_keys: Vec<(String, BV)>,
}

struct Enc<'a> {
    program: &'a Program,
    places: &'a [VarPlace],
    inputs: &'a Inputs,
    payload_len: BV,
    vars: Vec<Option<Sym>>,
    maps: BTreeMap<String, (Array, Array)>,
    locals: Vec<Option<Sym>>,
    done: Bool,
    drop: Bool,
    draw: BV,
    records: Vec<(Bool, String, Sym)>,
    map_keys: Vec<(String, BV)>,
}

pub fn encode(
    program: &Program,
    places: &[VarPlace],
    inputs: &Inputs,
    payload_len: &BV,
) -> Result<PolicyOutcome, Unsupported> {
    let mut vars = Vec::new();
    let mut maps = BTreeMap::new();
    for var in places {
        let value = match &var.place {
            Place::Constant(Value::Map(_)) | Place::Constant(Value::Vec(_)) => None,
            Place::Constant(v) => Some(constant(v)?),
            Place::Global(global) => {
                let raw = read_global(
                    &inputs.sections,
                    &global.section,
                    global.offset,
                    global.size,
                );
                Some(decode(&raw, &var.ty, var.scale.as_ref()))
            }
            Place::HashMap { map } => {
                let state = &inputs.maps[map];
                maps.insert(map.clone(), (state.present.clone(), state.values.clone()));
                None
            }
            Place::RingBuf { len, .. } => Some(Sym::Bits(
                read_global(&inputs.sections, &len.section, len.offset, len.size),
                Type::Uint,
            )),
        };
        vars.push(value);
    }
    let handler: &Handler = &program.req;
    let mut enc = Enc {
        program,
        places,
        inputs,
        payload_len: payload_len.clone(),
        vars,
        maps,
        locals: handler.locals.iter().map(|l| zero(&l.ty)).collect(),
        done: Bool::from_bool(false),
        drop: Bool::from_bool(false),
        draw: BV::from_u64(0, 8),
        records: Vec::new(),
        map_keys: Vec::new(),
    };
    enc.block(&handler.body, &Bool::from_bool(true))?;
    Ok(PolicyOutcome {
        drop: enc.drop,
        vars: enc.vars,
        maps: enc.maps,
        records: enc.records,
        map_keys: enc.map_keys,
    })
}

fn zero(ty: &Type) -> Option<Sym> {
    constant(&Value::zero(ty)).ok()
}

impl Enc<'_> {
    fn block(&mut self, block: &Block, guard: &Bool) -> Result<(), Unsupported> {
        for stmt in block {
            self.stmt(stmt, guard)?;
        }
        Ok(())
    }

    fn live(&self, guard: &Bool) -> Bool {
        Bool::and(&[guard.clone(), self.done.not()])
    }

    fn stmt(&mut self, stmt: &Stmt, guard: &Bool) -> Result<(), Unsupported> {
        let live = self.live(guard);
        match stmt {
            Stmt::Assign { place, value, .. } => {
                let v = self.expr(value, &live)?;
                let slot = match place {
                    IrPlace::State(id) => &mut self.vars[id.0 as usize],
                    IrPlace::Local(id) => &mut self.locals[id.0 as usize],
                };
                *slot = Some(match slot.as_ref() {
                    Some(old) => merge(&live, &v, old)?,
                    None => v,
                });
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
            } => {
                let c = self.boolean(cond, &live)?;
                self.block(then_block, &Bool::and(&[live.clone(), c.clone()]))?;
                self.block(else_block, &Bool::and(&[live, c.not()]))?;
            }
            Stmt::Switch {
                scrutinee,
                cases,
                default,
            } => {
                let s = self.expr(scrutinee, &live)?;
                let mut matched = Bool::from_bool(false);
                for (c, block) in cases {
                    let hit = equals(&s, &constant(&Value::from_const(c))?)?;
                    let take = Bool::and(&[live.clone(), matched.not(), hit.clone()]);
                    matched = Bool::or(&[matched, hit]);
                    self.block(block, &take)?;
                }
                if let Some(block) = default {
                    self.block(block, &Bool::and(&[live, matched.not()]))?;
                }
            }
            Stmt::MatchOption {
                scrutinee,
                binding,
                some_block,
                none_block,
            } => {
                let Sym::Opt { some, value } = self.expr(scrutinee, &live)? else {
                    return Err(Unsupported(
                        "a match on a value that is not optional".to_string(),
                    ));
                };
                let on_some = Bool::and(&[live.clone(), some.clone()]);
                if let Some(id) = binding {
                    let slot = &mut self.locals[id.0 as usize];
                    *slot = Some(match slot.as_ref() {
                        Some(old) => merge(&on_some, &value, old)?,
                        None => *value,
                    });
                }
                self.block(some_block, &on_some)?;
                self.block(none_block, &Bool::and(&[live, some.not()]))?;
            }
            Stmt::Send { action, .. } => {
                let drop = matches!(action, Action::Reject { .. });
                self.drop = live.ite(&Bool::from_bool(drop), &self.drop);
                self.done = Bool::or(&[self.done.clone(), live]);
            }
            Stmt::Eval { value } => {
                self.expr(value, &live)?;
            }
            Stmt::MapSet {
                map, key, value, ..
            } => {
                let (k, v) = (self.expr(key, &live)?, self.expr(value, &live)?);
                let (name, key_bits, value_bits, scale) = self.map_shape(*map)?;
                let (present, values) = self.maps[&name].clone();
                let k = encode_scalar(&k, key_bits, None)?;
                self.map_keys.push((name.clone(), k.clone()));
                let v = encode_scalar(&v, value_bits, scale.as_ref())?;
                let present2 = present.store(&k, &Bool::from_bool(true));
                let values2 = values.store(&k, &v);
                self.maps.insert(
                    name,
                    (live.ite(&present2, &present), live.ite(&values2, &values)),
                );
            }
            Stmt::MapDelete { map, key, .. } => {
                let k = self.expr(key, &live)?;
                let (name, key_bits, _, _) = self.map_shape(*map)?;
                let (present, values) = self.maps[&name].clone();
                let k = encode_scalar(&k, key_bits, None)?;
                self.map_keys.push((name.clone(), k.clone()));
                let present2 = present.store(&k, &Bool::from_bool(false));
                self.maps
                    .insert(name, (live.ite(&present2, &present), values));
            }
            Stmt::VecAppend { vec, value, .. } => {
                let VecRef::State(id) = vec else {
                    return Err(Unsupported(
                        "appending to a vector held in a local".to_string(),
                    ));
                };
                let v = self.expr(value, &live)?;
                let name = self.program.state_var(*id).name.clone();
                self.records.push((live.clone(), name, v));
                if let Some(Sym::Bits(len, t)) = &self.vars[id.0 as usize] {
                    let next = len.bvadd(BV::from_u64(1, 64));
                    self.vars[id.0 as usize] = Some(Sym::Bits(live.ite(&next, len), t.clone()));
                }
            }
            Stmt::Unpack { .. } => return Err(Unsupported("unpacking a pair".to_string())),
            Stmt::Opaque { feature, .. } => return Err(Unsupported(feature.construct.clone())),
        }
        Ok(())
    }

    fn map_shape(&self, id: StateId) -> Result<(String, u32, u32, Option<BigInt>), Unsupported> {
        let var = &self.places[id.0 as usize];
        let Place::HashMap { map } = &var.place else {
            return Err(Unsupported(format!(
                "writing the constant map `{}`",
                var.name
            )));
        };
        let state = &self.inputs.maps[map];
        Ok((
            map.clone(),
            state.key_bits,
            state.value_bits,
            var.scale.clone(),
        ))
    }

    fn boolean(&mut self, expr: &Expr, live: &Bool) -> Result<Bool, Unsupported> {
        match self.expr(expr, live)? {
            Sym::Bool(b) => Ok(b),
            _ => Err(Unsupported("a condition that is not a bool".to_string())),
        }
    }

    fn expr(&mut self, expr: &Expr, live: &Bool) -> Result<Sym, Unsupported> {
        Ok(match &expr.kind {
            ExprKind::Const(c) => constant(&Value::from_const(c))?,
            ExprKind::State(id) => self.vars[id.0 as usize].clone().ok_or_else(|| {
                Unsupported(format!(
                    "reading `{}` as a whole",
                    self.program.state_var(*id).name
                ))
            })?,
            ExprKind::Local(id) => self.locals[id.0 as usize]
                .clone()
                .ok_or_else(|| Unsupported("a local of this type".to_string()))?,
            ExprKind::Arith { op, lhs, rhs } => {
                let a = self.expr(lhs, live)?;
                let b = self.expr(rhs, live)?;
                arith(*op, a, b)?
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let a = self.expr(lhs, live)?;
                let b = self.expr(rhs, live)?;
                Sym::Bool(compare(*op, &a, &b)?)
            }
            ExprKind::And(lhs, rhs) => {
                let a = self.boolean(lhs, live)?;
                let b = self.boolean(rhs, &Bool::and(&[live.clone(), a.clone()]))?;
                Sym::Bool(Bool::and(&[a, b]))
            }
            ExprKind::Or(lhs, rhs) => {
                let a = self.boolean(lhs, live)?;
                let b = self.boolean(rhs, &Bool::and(&[live.clone(), a.not()]))?;
                Sym::Bool(Bool::or(&[a, b]))
            }
            ExprKind::MinMax {
                op: MinMax::Min,
                lhs,
                rhs,
            } if lhs.ty == Type::Float
                && matches!(
                    rhs.kind,
                    ExprKind::Arith {
                        op: ArithOp::Add,
                        ..
                    }
                ) =>
            {
                let ExprKind::Arith { lhs: x, rhs: t, .. } = &rhs.kind else {
                    unreachable!("matched above");
                };
                let cap = self.expr(lhs, live)?;
                let x = self.expr(x, live)?;
                let t = self.expr(t, live)?;
                capped_sum(&cap, &x, &t)?
            }
            ExprKind::MinMax { op, lhs, rhs } => {
                let a = self.expr(lhs, live)?;
                let b = self.expr(rhs, live)?;
                let pick_a = compare(
                    if *op == MinMax::Min {
                        CmpOp::Le
                    } else {
                        CmpOp::Ge
                    },
                    &a,
                    &b,
                )?;
                merge(&pick_a, &a, &b)?
            }
            ExprKind::ToFloat(inner) => match self.expr(inner, live)? {
                Sym::Bits(v, Type::Uint) => Sym::Float {
                    num: v.zero_ext(1),
                    den: BigInt::one(),
                },
                Sym::Bits(v, _) => Sym::Float {
                    num: v,
                    den: BigInt::one(),
                },
                _ => return Err(Unsupported("this conversion".to_string())),
            },
            ExprKind::InstantSeconds(inner) => match self.expr(inner, live)? {
                Sym::Bits(v, _) => Sym::Float {
                    num: v.zero_ext(1),
                    den: BigInt::from(1_000_000_000u64),
                },
                _ => return Err(Unsupported("this conversion".to_string())),
            },
            ExprKind::Randomf { lo, hi } => {
                let lo = self.expr(lo, live)?;
                let hi = self.expr(hi, live)?;
                let u = self
                    .inputs
                    .draws
                    .select(&self.draw)
                    .as_bv()
                    .expect("a draw");
                self.draw = live.ite(&self.draw.bvadd(BV::from_u64(1, 8)), &self.draw);
                let fraction = Sym::Float {
                    num: u.zero_ext(1),
                    den: BigInt::one() << 32,
                };
                let span = arith(ArithOp::Sub, hi, lo.clone())?;
                arith(ArithOp::Add, lo, arith(ArithOp::Mul, span, fraction)?)?
            }
            ExprKind::Now => Sym::Bits(self.inputs.now.clone(), Type::Instant),
            ExprKind::TimeDiff(a, b) => {
                let (Sym::Bits(a, _), Sym::Bits(b, _)) = (self.expr(a, live)?, self.expr(b, live)?)
                else {
                    return Err(Unsupported("time_diff of these values".to_string()));
                };
                Sym::Float {
                    num: nanoseconds_between(&a, &b),
                    den: BigInt::from(1_000_000_000u64),
                }
            }
            ExprKind::MapGet { map, key } => {
                let k = self.expr(key, live)?;
                self.map_get(*map, &k)?
            }
            ExprKind::PayloadLen => Sym::Bits(self.payload_len.clone(), Type::Int),
            ExprKind::VecSize(VecRef::State(id)) => match &self.vars[id.0 as usize] {
                Some(Sym::Bits(v, _)) => Sym::Bits(v.clone(), Type::Int),
                _ => match &self.places[id.0 as usize].place {
                    Place::Constant(Value::Vec(n)) => Sym::Bits(BV::from_u64(*n, 64), Type::Int),
                    _ => return Err(Unsupported("this vector".to_string())),
                },
            },
            ExprKind::VecSize(VecRef::Local(_)) => {
                return Err(Unsupported("a vector in a local".to_string()));
            }
            ExprKind::Pair(..) => return Err(Unsupported("a pair".to_string())),
            ExprKind::Opaque { feature, .. } => return Err(Unsupported(feature.construct.clone())),
        })
    }

    fn map_get(&mut self, map: StateId, key: &Sym) -> Result<Sym, Unsupported> {
        let var = &self.places[map.0 as usize];
        match &var.place {
            Place::Constant(Value::Map(entries)) => {
                let value_ty = match &var.ty {
                    Type::Map(_, v) => (**v).clone(),
                    _ => return Err(Unsupported("a map of unknown type".to_string())),
                };
                let mut some = Bool::from_bool(false);
                let mut value = zero(&value_ty)
                    .ok_or_else(|| Unsupported("a map value of this type".to_string()))?;
                for (k, v) in entries {
                    let hit = equals(key, &constant(k)?)?;
                    value = merge(&hit, &constant(v)?, &value)?;
                    some = Bool::or(&[some, hit]);
                }
                Ok(Sym::Opt {
                    some,
                    value: Box::new(value),
                })
            }
            Place::HashMap { map: name } => {
                let value_ty = match &var.ty {
                    Type::Map(_, v) => (**v).clone(),
                    _ => return Err(Unsupported("a map of unknown type".to_string())),
                };
                let state = &self.inputs.maps[name];
                let k = encode_scalar(key, state.key_bits, None)?;
                self.map_keys.push((name.clone(), k.clone()));
                let (present, values) = &self.maps[name];
                let some = present.select(&k).as_bool().expect("a presence bit");
                let raw = values.select(&k).as_bv().expect("a value");
                Ok(Sym::Opt {
                    some,
                    value: Box::new(decode(&raw, &value_ty, var.scale.as_ref())),
                })
            }
            _ => Err(Unsupported(format!("reading the map `{}`", var.name))),
        }
    }
}
