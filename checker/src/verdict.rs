//! The three verdicts of LANGUAGE.md §4.6 and a counterexample decoded into concrete inputs.

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_rational::BigRational;
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::Type;
use z3::Model;
use z3::ast::BV;

use crate::contract::{Place, VarPlace};
use crate::policy;
use crate::query;
use crate::symexec::{Inputs, PathEnd};

#[derive(Debug, Clone)]
pub enum Verdict {
    Equivalent {
        ms: u128,
        paths: usize,
        assumptions: Vec<String>,
    },
    NotEquivalent {
        counterexample: Box<Counterexample>,
        ms: u128,
    },
    Unknown {
        reason: String,
    },
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Equivalent { .. } => "equivalent",
            Verdict::NotEquivalent { .. } => "not equivalent",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

/// Concrete inputs on which the program and the policy disagree, and what the program did.
#[derive(Debug, Clone, PartialEq)]
pub struct Counterexample {
    pub packet: Vec<u8>,
    pub now: u64,
    pub draws: Vec<u32>,
    /// The stored state variables before the request (constants are left out).
    pub pre_state: BTreeMap<String, Value>,
    /// The XDP action the program returns.
    pub program_action: u32,
    /// The stored state variables after the program ran.
    pub program_post: BTreeMap<String, Value>,
}

fn eval_u64(model: &Model, term: &BV) -> u64 {
    model.eval(term, true).and_then(|v| v.as_u64()).unwrap_or(0)
}

fn value_of(model: &Model, raw: &BV, ty: &Type, scale: Option<&BigInt>) -> Value {
    let bits = eval_u64(model, raw);
    match ty {
        Type::Int => Value::Int(bits as i64),
        Type::Uint => Value::Uint(bits),
        Type::Instant => Value::Instant(bits),
        Type::Bool => Value::Bool(bits != 0),
        Type::Float => {
            let scale = scale.cloned().unwrap_or_else(|| BigInt::from(1));
            Value::Float(BigRational::new(BigInt::from(bits as i64), scale))
        }
        Type::Vec(_) => Value::Vec(bits),
        _ => Value::Bool(false),
    }
}

impl Counterexample {
    pub fn from_model(
        model: &Model,
        inputs: &Inputs,
        places: &[VarPlace],
        path: &PathEnd,
    ) -> Counterexample {
        let len = eval_u64(model, &inputs.packet_len).min(query::MAX_PACKET) as usize;
        let packet = query::packet_bytes(model, &inputs.packet, len);
        let now = eval_u64(model, &inputs.now);
        let draw_count = path.draws_used.max(4);
        let draws = (0..draw_count)
            .map(|i| {
                let d = inputs
                    .draws
                    .select(&BV::from_u64(i as u64, 8))
                    .as_bv()
                    .expect("a draw");
                eval_u64(model, &d) as u32
            })
            .collect();
        let mut pre_state = BTreeMap::new();
        let mut program_post = BTreeMap::new();
        for var in places {
            let (place, ty) = match &var.place {
                Place::Global { .. } => (&var.place, var.ty.clone()),
                Place::RingBuf { len, .. } => (len.as_ref(), var.ty.clone()),
                _ => continue,
            };
            if let Place::Global {
                section,
                offset,
                size,
            } = place
            {
                let pre = policy::read_global(&inputs.sections, section, *offset, *size);
                let post = policy::read_global(&path.sections, section, *offset, *size);
                pre_state.insert(
                    var.name.clone(),
                    value_of(model, &pre, &ty, var.scale.as_ref()),
                );
                program_post.insert(
                    var.name.clone(),
                    value_of(model, &post, &ty, var.scale.as_ref()),
                );
            }
        }
        let program_action = (eval_u64(model, &path.action) & 0xffff_ffff) as u32;
        Counterexample {
            packet,
            now,
            draws,
            pre_state,
            program_action,
            program_post,
        }
    }
}
