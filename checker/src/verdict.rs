//! The three verdicts of LANGUAGE.md §4.6 and a counterexample decoded into concrete inputs.

use std::collections::BTreeMap;

use num_bigint::BigInt;
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::Type;
use z3::Model;
use z3::ast::{BV, Bool};

use simplebpf_compiler::kernel::Entries;
use simplebpf_compiler::object_model::{BpfObject, Helper, MapKind};

use crate::policy;
use crate::query;
use crate::symexec::{Inputs, MapState, PathEnd};
use simplebpf_compiler::contract::{Place, VarPlace};

#[derive(Debug, Clone)]
pub enum Verdict {
    Equivalent {
        ms: u128,
        paths: usize,
        assumptions: Vec<String>,
        /// The solver's budget and what the proof used of it.
        budget: crate::query::Budget,
    },
    NotEquivalent {
        counterexample: Box<Counterexample>,
        ms: u128,
    },
    /// A read-modify-write of shared state that is neither one atomic instruction nor inside
    /// a `bpf_spin_lock` section: concurrent invocations can lose updates (LANGUAGE.md §3.1,
    /// §4.5), which sequential execution cannot show.
    Race {
        instruction: usize,
        variable: String,
    },
    Unknown {
        reason: String,
    },
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Equivalent { .. } => "equivalent",
            Verdict::NotEquivalent { .. } | Verdict::Race { .. } => "not equivalent",
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
    /// The whole pre-image of every writable global-data section (policy state and
    /// anything else the program keeps there), for an exact replay.
    pub sections_pre: BTreeMap<String, Vec<u8>>,
    /// Instruction indices of the `bpf_get_prandom_u32` and `bpf_ktime_get_ns` calls this
    /// path makes, in order, and the values the later clock reads return.
    pub draw_sites: Vec<usize>,
    pub time_sites: Vec<usize>,
    pub later_times: Vec<u64>,
    /// `(vector, value)` of each ring-buffer record the program emits, in order.
    pub program_records: Vec<(String, Value)>,
    /// Each hash map's entries before the request (by the object's map name), as raw
    /// `(key, value)` bytes for the kernel replay; only keys in `map_scope` when listed.
    pub maps_pre: BTreeMap<String, Entries>,
    /// For a map state variable, the keys its state is shown and compared at: the keys
    /// either side looks up, writes or deletes (the model leaves every other key free, and
    /// neither side can tell). A map not listed is shown and compared whole.
    pub map_scope: BTreeMap<String, Vec<Value>>,
    /// What found it: a concrete pre-test in the kernel, or the solver.
    pub found_by: &'static str,
}

fn eval_u64(model: &Model, term: &BV) -> u64 {
    model.eval(term, true).and_then(|v| v.as_u64()).unwrap_or(0)
}

fn eval_bool(model: &Model, term: &Bool) -> bool {
    model
        .eval(term, true)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// A map's present entries at `keys` (raw key and value bytes) in a model.
fn entries_at(model: &Model, map: &MapState, keys: &[u64]) -> Entries {
    let bytes = |raw: u64, bits: u32| raw.to_le_bytes()[..(bits as usize / 8).min(8)].to_vec();
    keys.iter()
        .filter_map(|&key| {
            let k = BV::from_u64(key, map.key_bits);
            let present = map.present.select(&k).as_bool().expect("a presence bit");
            let value = map.values.select(&k).as_bv().expect("a value");
            eval_bool(model, &present).then(|| {
                (
                    bytes(key, map.key_bits),
                    bytes(eval_u64(model, &value), map.value_bits),
                )
            })
        })
        .collect()
}

fn value_of(model: &Model, raw: &BV, ty: &Type, scale: Option<&BigInt>) -> Value {
    // The model's bits, decoded like the bytes the kernel leaves (one decoder for both).
    crate::replay::decode(&eval_u64(model, raw).to_le_bytes(), ty, scale)
}

impl Counterexample {
    /// `value` of the state variable `name` as this counterexample compares it: a map only
    /// at the keys in scope.
    pub fn in_scope(&self, name: &str, value: &Value) -> Value {
        match (value, self.map_scope.get(name)) {
            (Value::Map(entries), Some(keys)) => Value::Map(
                entries
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => value.clone(),
        }
    }

    /// `policy_keys`: the `(map, key)` of every map access the policy makes.
    pub fn from_model(
        model: &Model,
        inputs: &Inputs,
        places: &[VarPlace],
        path: &PathEnd,
        policy_keys: &[(String, BV)],
        object: &BpfObject,
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
            if let Some(global) = var.global() {
                let (section, offset, size) = (&global.section, global.offset, global.size);
                let pre = policy::read_global(&inputs.sections, section, offset, size);
                let post = policy::read_global(&path.sections, section, offset, size);
                let scale = var.scale.as_ref();
                pre_state.insert(var.name.clone(), value_of(model, &pre, &var.ty, scale));
                program_post.insert(var.name.clone(), value_of(model, &post, &var.ty, scale));
            }
        }
        let mut maps_pre = BTreeMap::new();
        let mut map_scope = BTreeMap::new();
        for var in places {
            let (Place::HashMap { map }, Type::Map(key_ty, value_ty)) = (&var.place, &var.ty)
            else {
                continue;
            };
            let mut keys: Vec<u64> = Vec::new();
            for (_, key) in path
                .map_keys
                .iter()
                .chain(policy_keys)
                .filter(|(m, _)| m == map)
            {
                let key = eval_u64(model, key);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            let decoded = |entries: &[(Vec<u8>, Vec<u8>)]| {
                crate::replay::decode_map(entries, key_ty, value_ty, var.scale.as_ref())
            };
            let pre = entries_at(model, &inputs.maps[map], &keys);
            let post = entries_at(model, &path.maps[map], &keys);
            pre_state.insert(var.name.clone(), decoded(&pre));
            program_post.insert(var.name.clone(), decoded(&post));
            map_scope.insert(
                var.name.clone(),
                keys.iter()
                    .map(|k| crate::replay::decode(&k.to_le_bytes(), key_ty, None))
                    .collect(),
            );
            maps_pre.insert(map.clone(), pre);
        }
        let program_action = (eval_u64(model, &path.action) & 0xffff_ffff) as u32;
        let mut sections_pre = BTreeMap::new();
        for map in &object.maps {
            if map.kind == MapKind::GlobalData && !map.name.starts_with(".rodata") {
                let section = &inputs.sections[&map.name];
                let bytes = (0..u64::from(map.value_size))
                    .map(|offset| eval_u64(model, &section.byte(offset)) as u8)
                    .collect();
                sections_pre.insert(map.name.clone(), bytes);
            }
        }
        // The calls the model's path made: merged paths carry each path's calls under
        // its condition.
        let calls = |helper: Helper| -> Vec<usize> {
            path.events
                .iter()
                .filter(|event| event.helper == helper && eval_bool(model, &event.guard))
                .map(|event| event.pc)
                .collect()
        };
        let program_records = path
            .records
            .iter()
            .filter_map(|(map, bytes)| {
                let var = places
                    .iter()
                    .find(|p| matches!(&p.place, Place::RingBuf { map: m, .. } if m == map))?;
                let Type::Vec(element) = &var.ty else {
                    return None;
                };
                Some((
                    var.name.clone(),
                    value_of(model, bytes, element, var.scale.as_ref()),
                ))
            })
            .collect();
        Counterexample {
            packet,
            now,
            draws,
            pre_state,
            program_action,
            program_post,
            program_records,
            found_by: "the solver",
            maps_pre,
            map_scope,
            sections_pre,
            draw_sites: calls(Helper::GET_PRANDOM_U32),
            time_sites: calls(Helper::KTIME_GET_NS),
            later_times: path
                .later_times
                .iter()
                .map(|t| eval_u64(model, t))
                .collect(),
        }
    }
}
