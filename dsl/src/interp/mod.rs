//! The reference interpreter: LANGUAGE.md §3, exactly.
//!
//! It runs one handler invocation on (state, request facts, draws, time) and returns
//! (action, new state, emitted records). Integers wrap at 64 bits, floats are exact
//! rationals, anything divided by zero is 0, each evaluated `randomf` consumes the next draw,
//! `current_time()` is the invocation's time, `send` ends the handler, `and`/`or`
//! short-circuit. The checker and the kernel differential tests compare against this.

mod value;

pub use value::Value;

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;

use crate::ast::HandlerKind;
use crate::ir::{
    self, ArithOp, Block, CmpOp, Expr, ExprKind, MinMax, Place, Program, Stmt, VecRef,
};
use crate::span::Span;

/// The state of every state variable, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub vars: BTreeMap<String, Value>,
}

impl State {
    /// Every variable at its zero value: the state before `init` runs.
    pub fn zeroed(program: &Program) -> State {
        State {
            vars: program
                .state
                .iter()
                .map(|var| (var.name.clone(), Value::zero(&var.ty)))
                .collect(),
        }
    }

    /// Sets one variable, checking that the value has the variable's type.
    pub fn set(&mut self, program: &Program, name: &str, value: Value) -> Result<(), InterpError> {
        let var = program
            .state_id(name)
            .map(|id| program.state_var(id))
            .ok_or_else(|| InterpError::NoSuchState {
                name: name.to_string(),
            })?;
        if std::mem::discriminant(&Value::zero(&var.ty)) != std::mem::discriminant(&value) {
            return Err(InterpError::StateType {
                name: name.to_string(),
                expected: var.ty.to_string(),
            });
        }
        self.vars.insert(name.to_string(), value);
        Ok(())
    }
}

/// What the handler can learn about the RPC. On the XDP target that is its size only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    /// `byte_size(rpc, _)`: the message size in bytes.
    pub payload_len: u64,
}

/// The inputs of one invocation besides the state.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub request: Request,
    /// Uniform 32-bit values; each evaluated `randomf` takes the next one.
    pub draws: &'a [u32],
    /// `current_time()`, in nanoseconds.
    pub time_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The RPC continues (`XDP_PASS` on the XDP target).
    Forward,
    /// An error goes back instead (`XDP_DROP`); the reason as written.
    Reject { reason: String },
}

/// One append to a vector: what the XDP target sends to a ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub vec: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    pub state: State,
    pub records: Vec<Record>,
    pub draws_used: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("the handler needs more than the {given} random draws given")]
    OutOfDraws { given: usize },
    #[error("{construct} cannot run in this version")]
    Opaque { construct: String, span: Span },
    #[error("there is no state variable `{name}`")]
    NoSuchState { name: String },
    #[error("the state variable `{name}` holds a value of type {expected}")]
    StateType { name: String, expected: String },
}

/// Runs `init` on zeroed state: the state right after the program is loaded at `time_ns`.
pub fn load(program: &Program, draws: &[u32], time_ns: u64) -> Result<Outcome, InterpError> {
    let inputs = Inputs {
        request: Request::default(),
        draws,
        time_ns,
    };
    run(program, HandlerKind::Init, &State::zeroed(program), &inputs)
}

/// Runs one invocation of a handler.
pub fn run(
    program: &Program,
    kind: HandlerKind,
    state: &State,
    inputs: &Inputs<'_>,
) -> Result<Outcome, InterpError> {
    let handler = program.handler(kind);
    let mut machine = Machine {
        program,
        state: state.clone(),
        locals: handler.locals.iter().map(|l| Value::zero(&l.ty)).collect(),
        inputs,
        draws_used: 0,
        records: Vec::new(),
    };
    let action = match machine.block(&handler.body)? {
        Flow::Sent(action) => action,
        Flow::Next => Action::Forward,
    };
    Ok(Outcome {
        action,
        state: machine.state,
        records: machine.records,
        draws_used: machine.draws_used,
    })
}

enum Flow {
    Next,
    Sent(Action),
}

struct Machine<'a> {
    program: &'a Program,
    state: State,
    locals: Vec<Value>,
    inputs: &'a Inputs<'a>,
    draws_used: usize,
    records: Vec<Record>,
}

impl Machine<'_> {
    fn block(&mut self, block: &Block) -> Result<Flow, InterpError> {
        for stmt in block {
            if let Flow::Sent(action) = self.stmt(stmt)? {
                return Ok(Flow::Sent(action));
            }
        }
        Ok(Flow::Next)
    }

    fn state_name(&self, id: ir::StateId) -> &str {
        &self.program.state_var(id).name
    }

    fn state_value(&self, id: ir::StateId) -> Value {
        let var = self.program.state_var(id);
        self.state
            .vars
            .get(&var.name)
            .cloned()
            .unwrap_or_else(|| Value::zero(&var.ty))
    }

    fn write_state(&mut self, id: ir::StateId, value: Value) {
        let name = self.state_name(id).to_string();
        self.state.vars.insert(name, value);
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<Flow, InterpError> {
        match stmt {
            Stmt::Assign { place, value, .. } => {
                let value = self.expr(value)?;
                match place {
                    Place::State(id) => self.write_state(*id, value),
                    Place::Local(id) => self.locals[id.0 as usize] = value,
                }
            }
            Stmt::Unpack {
                first,
                second,
                value,
                ..
            } => {
                if let Value::Pair(a, b) = self.expr(value)? {
                    self.locals[first.0 as usize] = *a;
                    self.locals[second.0 as usize] = *b;
                }
            }
            Stmt::MapSet {
                map, key, value, ..
            } => {
                let key = self.expr(key)?;
                let value = self.expr(value)?;
                let capacity = self.program.state_var(*map).capacity.unwrap_or(u64::MAX);
                if let Value::Map(mut entries) = self.state_value(*map) {
                    // Inserting a new key into a full map does nothing (LANGUAGE.md §3.4).
                    if entries.contains_key(&key) || (entries.len() as u64) < capacity {
                        entries.insert(key, value);
                    }
                    self.write_state(*map, Value::Map(entries));
                }
            }
            Stmt::MapDelete { map, key, .. } => {
                let key = self.expr(key)?;
                if let Value::Map(mut entries) = self.state_value(*map) {
                    entries.remove(&key);
                    self.write_state(*map, Value::Map(entries));
                }
            }
            Stmt::VecAppend { vec, value, span } => {
                let value = self.expr(value)?;
                let VecRef::State(id) = vec else {
                    return Err(InterpError::Opaque {
                        construct: "appending to a vector stored in a map".to_string(),
                        span: *span,
                    });
                };
                if let Value::Vec(len) = self.state_value(*id) {
                    self.write_state(*id, Value::Vec(len.wrapping_add(1)));
                }
                self.records.push(Record {
                    vec: self.state_name(*id).to_string(),
                    value,
                });
            }
            Stmt::Eval { value } => {
                self.expr(value)?;
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
            } => {
                let branch = if self.expr(cond)?.as_bool() {
                    then_block
                } else {
                    else_block
                };
                return self.block(branch);
            }
            Stmt::Switch {
                scrutinee,
                cases,
                default,
            } => {
                let value = self.expr(scrutinee)?;
                for (case, block) in cases {
                    if Value::from_const(case) == value {
                        return self.block(block);
                    }
                }
                if let Some(block) = default {
                    return self.block(block);
                }
            }
            Stmt::MatchOption {
                scrutinee,
                binding,
                some_block,
                none_block,
            } => match self.expr(scrutinee)? {
                Value::Option(Some(value)) => {
                    if let Some(local) = binding {
                        self.locals[local.0 as usize] = *value;
                    }
                    return self.block(some_block);
                }
                _ => return self.block(none_block),
            },
            Stmt::Send { action, .. } => {
                let action = match action {
                    ir::Action::Forward => Action::Forward,
                    ir::Action::Reject { reason } => Action::Reject {
                        reason: match self.expr(reason)? {
                            Value::Str(text) => text,
                            other => other.to_string(),
                        },
                    },
                };
                return Ok(Flow::Sent(action));
            }
            Stmt::Opaque { feature, span, .. } => {
                return Err(InterpError::Opaque {
                    construct: feature.construct.clone(),
                    span: *span,
                });
            }
        }
        Ok(Flow::Next)
    }

    fn expr(&mut self, expr: &Expr) -> Result<Value, InterpError> {
        Ok(match &expr.kind {
            ExprKind::Const(value) => Value::from_const(value),
            ExprKind::State(id) => self.state_value(*id),
            ExprKind::Local(id) => self.locals[id.0 as usize].clone(),
            ExprKind::Arith { op, lhs, rhs } => {
                let (lhs, rhs) = (self.expr(lhs)?, self.expr(rhs)?);
                arith(*op, lhs, rhs)
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let (lhs, rhs) = (self.expr(lhs)?, self.expr(rhs)?);
                let ordering = lhs.cmp(&rhs);
                Value::Bool(match op {
                    CmpOp::Eq => ordering.is_eq(),
                    CmpOp::Ne => ordering.is_ne(),
                    CmpOp::Lt => ordering.is_lt(),
                    CmpOp::Gt => ordering.is_gt(),
                    CmpOp::Le => ordering.is_le(),
                    CmpOp::Ge => ordering.is_ge(),
                })
            }
            ExprKind::And(lhs, rhs) => {
                Value::Bool(self.expr(lhs)?.as_bool() && self.expr(rhs)?.as_bool())
            }
            ExprKind::Or(lhs, rhs) => {
                Value::Bool(self.expr(lhs)?.as_bool() || self.expr(rhs)?.as_bool())
            }
            ExprKind::MinMax { op, lhs, rhs } => {
                let (lhs, rhs) = (self.expr(lhs)?, self.expr(rhs)?);
                match op {
                    MinMax::Min => lhs.min(rhs),
                    MinMax::Max => lhs.max(rhs),
                }
            }
            ExprKind::ToFloat(inner) => match self.expr(inner)? {
                Value::Int(v) => Value::Float(BigRational::from_integer(BigInt::from(v))),
                Value::Uint(v) => Value::Float(BigRational::from_integer(BigInt::from(v))),
                other => other,
            },
            ExprKind::InstantSeconds(inner) => match self.expr(inner)? {
                Value::Instant(ns) => Value::Float(seconds(i128::from(ns))),
                other => other,
            },
            ExprKind::Randomf { lo, hi } => {
                let (lo, hi) = (self.expr(lo)?, self.expr(hi)?);
                let u = self.draw()?;
                let (Value::Float(lo), Value::Float(hi)) = (lo, hi) else {
                    unreachable!("randomf's bounds are lowered to floats");
                };
                let scale = BigRational::new(BigInt::from(u), BigInt::from(1u64 << 32));
                Value::Float(&lo + (hi - &lo) * scale)
            }
            ExprKind::Now => Value::Instant(self.inputs.time_ns),
            ExprKind::TimeDiff(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                match (a, b) {
                    (Value::Instant(a), Value::Instant(b)) => {
                        Value::Float(seconds(i128::from(a) - i128::from(b)))
                    }
                    _ => unreachable!("time_diff's arguments are lowered to Instants"),
                }
            }
            ExprKind::MapGet { map, key } => {
                let key = self.expr(key)?;
                match self.state_value(*map) {
                    Value::Map(entries) => Value::Option(entries.get(&key).cloned().map(Box::new)),
                    _ => Value::Option(None),
                }
            }
            ExprKind::PayloadLen => Value::Int(self.inputs.request.payload_len as i64),
            ExprKind::VecSize(vec) => match vec {
                VecRef::State(id) => match self.state_value(*id) {
                    Value::Vec(len) => Value::Int(len as i64),
                    _ => Value::Int(0),
                },
                VecRef::Local(_) => {
                    return Err(InterpError::Opaque {
                        construct: "a vector stored in a map".to_string(),
                        span: expr.span,
                    });
                }
            },
            ExprKind::Pair(a, b) => Value::Pair(Box::new(self.expr(a)?), Box::new(self.expr(b)?)),
            ExprKind::Opaque { feature, .. } => {
                return Err(InterpError::Opaque {
                    construct: feature.construct.clone(),
                    span: expr.span,
                });
            }
        })
    }

    fn draw(&mut self) -> Result<u32, InterpError> {
        let draw =
            self.inputs
                .draws
                .get(self.draws_used)
                .copied()
                .ok_or(InterpError::OutOfDraws {
                    given: self.inputs.draws.len(),
                })?;
        self.draws_used += 1;
        Ok(draw)
    }
}

/// Nanoseconds as exact seconds.
fn seconds(ns: i128) -> BigRational {
    BigRational::new(BigInt::from(ns), BigInt::from(1_000_000_000u64))
}

fn arith(op: ArithOp, lhs: Value, rhs: Value) -> Value {
    match (lhs, rhs) {
        (Value::Int(a), Value::Int(b)) => Value::Int(match op {
            ArithOp::Add => a.wrapping_add(b),
            ArithOp::Sub => a.wrapping_sub(b),
            ArithOp::Mul => a.wrapping_mul(b),
            // Truncates toward zero; i64::MIN / -1 wraps to i64::MIN as eBPF's sdiv does.
            ArithOp::Div if b == 0 => 0,
            ArithOp::Div => a.wrapping_div(b),
        }),
        (Value::Uint(a), Value::Uint(b)) => Value::Uint(match op {
            ArithOp::Add => a.wrapping_add(b),
            ArithOp::Sub => a.wrapping_sub(b),
            ArithOp::Mul => a.wrapping_mul(b),
            ArithOp::Div if b == 0 => 0,
            ArithOp::Div => a / b,
        }),
        (Value::Float(a), Value::Float(b)) => Value::Float(match op {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div if b.is_zero() => BigRational::zero(),
            ArithOp::Div => a / b,
        }),
        (a, _) => a,
    }
}
