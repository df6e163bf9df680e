//! Cheap concrete tests before the solver (the K2 lesson): the object runs in the kernel on a
//! few frames with every random draw and clock read patched to fixed values, the policy runs
//! in the interpreter on the same inputs, and a difference is a counterexample found without
//! Z3. Counterexamples found later join these inputs for the rest of a checker session, so a
//! search that checks many candidates (the optimizer) tries them first.

use std::collections::BTreeMap;
use std::time::Instant;

use simplebpf_compiler::contract::Codec;
use simplebpf_compiler::kernel::LoadedProgram;
use simplebpf_compiler::object_model::{BpfObject, Helper, Insn, MapKind};
use simplebpf_dsl::interp::{self, Value};
use simplebpf_dsl::ir::{Program, Type};

use crate::query::Options;
use crate::reference;
use crate::replay::{decode, decode_map, patch_call, vars_in_sections};
use crate::verdict::{Counterexample, Verdict};
use simplebpf_compiler::contract::Place;

const DRAWS: &[u32] = &[0, 1 << 31, u32::MAX];
const NOW: u64 = 1_000_000_000;

/// A concrete input: a frame, every draw equal to `draw`, every clock read `NOW`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Case {
    frame: Vec<u8>,
    draw: u32,
}

/// The test frames: the learned ones (earlier counterexamples) first.
fn frames(port: u16, learned: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = learned.to_vec();
    let udp = |dest: u16, payload: usize| {
        let mut l4 = vec![0x9c, 0x40];
        l4.extend_from_slice(&dest.to_be_bytes());
        l4.extend_from_slice(&((payload + 8) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend(std::iter::repeat_n(0xAB, payload));
        l4
    };
    let ipv4 = |options: usize, l4: &[u8]| {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let ihl = 5 + options / 4;
        f.push(0x40 | ihl as u8);
        f.push(0);
        f.extend_from_slice(&((ihl * 4 + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend(std::iter::repeat_n(1, options));
        f.extend_from_slice(l4);
        f
    };
    let ipv6 = |l4: &[u8]| {
        let mut f = vec![
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xDD, 0x60, 0, 0, 0,
        ];
        f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        f.extend_from_slice(&[17, 64]);
        f.extend(std::iter::repeat_n(7, 32));
        f.extend_from_slice(l4);
        f
    };
    frames.push(ipv4(0, &udp(port, 64)));
    frames.push(ipv4(0, &udp(port, 200)));
    frames.push(ipv4(8, &udp(port, 0)));
    frames.push(ipv6(&udp(port, 100)));
    frames.push(ipv4(0, &udp(port.wrapping_add(1), 64)));
    frames
}

/// Patches every draw and clock call of the program into a `mov` of the given value.
fn patched(elf: &[u8], object: &BpfObject, name: Option<&str>, draw: u32) -> Option<Vec<u8>> {
    let prog = object.xdp_program(name).ok()?;
    let mut bytes = elf.to_vec();
    for (index, insn) in prog.insns.iter().enumerate() {
        let replacement = match insn.helper() {
            Some(Helper::GET_PRANDOM_U32) => Insn::mov32_imm(0, draw),
            Some(Helper::KTIME_GET_NS) => Insn::mov64_imm(0, NOW as i32),
            _ => continue,
        };
        patch_call(&mut bytes, prog, index, &replacement).ok()?;
    }
    Some(bytes)
}

/// A hash map state variable: its object map, key and value types, and its raw entries
/// before each test (the policy's `init` ones).
struct MapVar {
    name: String,
    map: String,
    key_ty: Type,
    value_ty: Type,
    scale: Option<num_bigint::BigInt>,
    raw: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Runs the pre-tests; `Some` verdict when one of them already shows a difference. `None`
/// also when they cannot run (no kernel, a state the tests cannot set): then the solver
/// decides alone.
pub fn run(
    elf: &[u8],
    program: &Program,
    object: &BpfObject,
    options: &Options,
    learned: &[Vec<u8>],
) -> Option<Verdict> {
    let started = Instant::now();
    let port = options.port;
    let name = options.program.as_deref();
    let places = crate::query::places(program, object).ok()?;
    let sections: BTreeMap<String, Vec<u8>> = object
        .maps
        .iter()
        .filter(|m| m.kind == MapKind::GlobalData && !m.name.starts_with(".rodata"))
        .map(|m| {
            let mut bytes = m.initial.clone();
            bytes.resize(m.value_size as usize, 0);
            (m.name.clone(), bytes)
        })
        .collect();
    let read_vars = |sections: &BTreeMap<String, Vec<u8>>| vars_in_sections(&places, sections);
    let mut pre_vars = read_vars(&sections);
    let init = interp::load(program, &[], 0).ok()?.state;
    let mut map_vars = Vec::new();
    for var in &places {
        let (Place::HashMap { map }, Type::Map(key_ty, value_ty)) = (&var.place, &var.ty) else {
            continue;
        };
        let shape = object.maps.iter().find(|m| &m.name == map)?;
        let value = init.vars.get(&var.name)?.clone();
        let Value::Map(entries) = &value else {
            return None;
        };
        let raw = entries
            .iter()
            .map(|(k, v)| {
                Some((
                    encode(k, key_ty, None, shape.key_size)?,
                    encode(v, value_ty, var.scale.as_ref(), shape.value_size)?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        pre_vars.insert(var.name.clone(), value);
        map_vars.push(MapVar {
            name: var.name.clone(),
            map: map.clone(),
            key_ty: (**key_ty).clone(),
            value_ty: (**value_ty).clone(),
            scale: var.scale.clone(),
            raw,
        });
    }
    let rings: Vec<(&str, &str, Type, Option<&num_bigint::BigInt>)> = places
        .iter()
        .filter_map(|var| match (&var.place, &var.ty) {
            (Place::RingBuf { map, .. }, Type::Vec(element)) => Some((
                var.name.as_str(),
                map.as_str(),
                (**element).clone(),
                var.scale.as_ref(),
            )),
            _ => None,
        })
        .collect();
    let mut pre = init.clone();
    for (name, value) in &pre_vars {
        pre.set(program, name, value.clone()).ok()?;
    }
    for &draw in DRAWS {
        let elf = patched(elf, object, name, draw)?;
        let mut loaded = LoadedProgram::load(&elf, name).ok()?;
        for frame in frames(port, learned) {
            if options.cancel.is_cancelled() {
                return None;
            }
            let case = Case { frame, draw };
            for (name, bytes) in &sections {
                loaded.write_section(name, bytes).ok()?;
            }
            for var in &map_vars {
                loaded.set_map_entries(&var.map, &var.raw).ok()?;
            }
            for (_, map, _, _) in &rings {
                loaded.drain_ring_buffer(map).ok()?;
            }
            let (action, _) = loaded.test_run(&case.frame, 1).ok()?;
            let mut after = BTreeMap::new();
            for name in sections.keys() {
                after.insert(name.clone(), loaded.read_section(name).ok()?);
            }
            let mut post = read_vars(&after);
            for var in &map_vars {
                let entries = loaded.map_entries(&var.map).ok()?;
                let value = decode_map(&entries, &var.key_ty, &var.value_ty, var.scale.as_ref());
                post.insert(var.name.clone(), value);
            }
            let mut records = Vec::new();
            for (name, map, element, scale) in &rings {
                for bytes in loaded.drain_ring_buffer(map).ok()? {
                    records.push((name.to_string(), decode(&bytes, element, *scale)));
                }
            }
            let draws = vec![case.draw; 256];
            let expected = reference::run(program, &case.frame, port, &pre, &draws, NOW).ok()?;
            let expected_post: BTreeMap<String, Value> = post
                .keys()
                .filter_map(|name| {
                    let value = expected.state.vars.get(name)?;
                    Some((name.clone(), value.clone()))
                })
                .collect();
            if action != expected.action || post != expected_post || records != expected.records {
                let prog = object.xdp_program(name).ok()?;
                let sites = |helper: Helper| -> Vec<usize> {
                    prog.insns
                        .iter()
                        .enumerate()
                        .filter(|(_, i)| i.helper() == Some(helper))
                        .map(|(index, _)| index)
                        .collect()
                };
                let time_sites = sites(Helper::KTIME_GET_NS);
                let counterexample = Counterexample {
                    packet: case.frame,
                    now: NOW,
                    draws: vec![case.draw; sites(Helper::GET_PRANDOM_U32).len().max(4)],
                    pre_state: pre_vars.clone(),
                    program_action: action,
                    program_post: post,
                    sections_pre: sections.clone(),
                    maps_pre: map_vars
                        .iter()
                        .map(|v| (v.map.clone(), v.raw.clone()))
                        .collect(),
                    map_scope: BTreeMap::new(),
                    draw_sites: sites(Helper::GET_PRANDOM_U32),
                    later_times: vec![NOW; time_sites.len().saturating_sub(1)],
                    time_sites,
                    program_records: records,
                    found_by: "a concrete pre-test in the kernel",
                };
                return Some(Verdict::NotEquivalent {
                    counterexample: Box::new(counterexample),
                    ms: started.elapsed().as_millis(),
                });
            }
        }
    }
    None
}

/// A value as the program stores it in `size` bytes (the backend's encoder), if it can be.
fn encode(
    value: &Value,
    ty: &Type,
    scale: Option<&num_bigint::BigInt>,
    size: u32,
) -> Option<Vec<u8>> {
    let mut bytes = Codec::new(ty.clone(), scale.cloned()).encode(value).ok()?;
    if size > 8 {
        return None;
    }
    bytes.resize(size as usize, 0);
    Some(bytes)
}
