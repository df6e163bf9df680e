//! Replaying a counterexample in the kernel: the object with its random draws and clock reads
//! replaced by the counterexample's values (each `call` on the path becomes a `mov` into `r0`),
//! loaded, given the counterexample's pre-state, and run once with `BPF_PROG_TEST_RUN` on its
//! packet. If the kernel does not do what the model said the program does, the checker is
//! wrong: the caller must say so loudly, not print "not equivalent".

use std::collections::BTreeMap;

use num_bigint::BigInt;
use simplebpf_compiler::contract::Codec;
use simplebpf_compiler::kernel::{KernelError, LoadedProgram};
use simplebpf_compiler::object_model::insn::{self, Insn};
use simplebpf_compiler::object_model::{BpfObject, ProgramModel};
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::{Program, Type};

use crate::verdict::Counterexample;
use simplebpf_compiler::contract::{Place, VarPlace};

#[derive(Debug, Clone, PartialEq)]
pub enum KernelReplay {
    /// The kernel returned the action and left the state the counterexample says.
    Reproduced,
    /// The kernel disagrees with the model: a checker bug.
    NotReproduced {
        action: u32,
        post: BTreeMap<String, Value>,
        records: Vec<(String, Value)>,
    },
    /// This machine may not load programs (run as root, or with CAP_BPF and CAP_NET_ADMIN).
    NotPermitted(String),
    /// The replay could not run; why.
    Unavailable(String),
}

/// Why a replay did not run.
enum Failure {
    NotPermitted(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::Other(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Failure {
        Failure::Other(reason.to_string())
    }
}

/// `name`: which XDP program of the object (the only one when `None`).
pub fn kernel_replay(
    elf: &[u8],
    program: &Program,
    object: &BpfObject,
    name: Option<&str>,
    cx: &Counterexample,
) -> KernelReplay {
    match run(elf, program, object, name, cx) {
        Ok(replay) => replay,
        Err(Failure::NotPermitted(reason)) => KernelReplay::NotPermitted(reason),
        Err(Failure::Other(reason)) => KernelReplay::Unavailable(reason),
    }
}

fn run(
    elf: &[u8],
    program: &Program,
    object: &BpfObject,
    name: Option<&str>,
    cx: &Counterexample,
) -> Result<KernelReplay, Failure> {
    let places = crate::query::places(program, object)?;
    let prog = object.xdp_program(name).map_err(|e| e.to_string())?;

    let mut patched = elf.to_vec();
    let mut patch = |site: usize, replacement: Insn| -> Result<(), String> {
        patch_call(&mut patched, prog, site, &replacement)
    };
    let mut seen = std::collections::BTreeSet::new();
    for (k, site) in cx.draw_sites.iter().enumerate() {
        if !seen.insert(*site) {
            return Err("a draw site runs twice on the path (a loop)".into());
        }
        let draw = *cx.draws.get(k).ok_or("fewer draws than calls")?;
        // mov32 zero-extends: r0 = the draw exactly, as the helper returns it.
        patch(*site, Insn::mov32_imm(0, draw))?;
    }
    let times: Vec<u64> = std::iter::once(cx.now)
        .chain(cx.later_times.iter().copied())
        .collect();
    for (k, site) in cx.time_sites.iter().enumerate() {
        if !seen.insert(*site) {
            return Err("a clock read runs twice on the path (a loop)".into());
        }
        let time = *times.get(k).ok_or("fewer times than clock reads")?;
        if time >= 1 << 31 {
            return Err(format!("the time {time} does not fit a 32-bit immediate").into());
        }
        patch(*site, Insn::mov64_imm(0, time as i32))?;
    }

    let mut loaded = match LoadedProgram::load(&patched, name) {
        Ok(loaded) => loaded,
        Err(KernelError::Rejected { .. }) => {
            return Err("the verifier rejected the patched object".into());
        }
        Err(err) if err.is_missing_capability() => {
            return Err(Failure::NotPermitted(err.to_string()));
        }
        Err(err) => return Err(err.to_string().into()),
    };
    for (section, bytes) in &cx.sections_pre {
        loaded
            .write_section(section, bytes)
            .map_err(|e| e.to_string())?;
    }
    let kernel = |e: KernelError| e.to_string();
    for var in &places {
        match &var.place {
            Place::HashMap { map } => {
                let entries = cx.maps_pre.get(map).cloned().unwrap_or_default();
                loaded.set_map_entries(map, &entries).map_err(kernel)?;
            }
            Place::RingBuf { map, .. } => {
                loaded.drain_ring_buffer(map).map_err(kernel)?;
            }
            _ => {}
        }
    }
    let (action, _) = loaded.test_run(&cx.packet, 1).map_err(kernel)?;
    let mut sections = BTreeMap::new();
    for var in &places {
        if let Some(global) = var.global()
            && !sections.contains_key(&global.section)
        {
            let bytes = loaded
                .read_section(&global.section)
                .map_err(|e| e.to_string())?;
            sections.insert(global.section.clone(), bytes);
        }
    }
    let mut post = vars_in_sections(&places, &sections);
    let mut records = Vec::new();
    for var in &places {
        match (&var.place, &var.ty) {
            (Place::HashMap { map }, Type::Map(key_ty, value_ty)) => {
                let entries = loaded.map_entries(map).map_err(kernel)?;
                let whole = decode_map(&entries, key_ty, value_ty, var.scale.as_ref());
                post.insert(var.name.clone(), cx.in_scope(&var.name, &whole));
            }
            (Place::RingBuf { map, .. }, Type::Vec(element)) => {
                for bytes in loaded.drain_ring_buffer(map).map_err(kernel)? {
                    records.push((
                        var.name.clone(),
                        decode(&bytes, element, var.scale.as_ref()),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(
        if action == cx.program_action && post == cx.program_post && records == cx.program_records {
            KernelReplay::Reproduced
        } else {
            KernelReplay::NotReproduced {
                action,
                post,
                records,
            }
        },
    )
}

/// Rewrites the helper `call` at instruction `site` of `prog` in the ELF bytes into
/// `replacement` (one slot), checking that a helper call is there.
pub(crate) fn patch_call(
    elf: &mut [u8],
    prog: &ProgramModel,
    site: usize,
    replacement: &Insn,
) -> Result<(), String> {
    let base = prog
        .file_offset
        .ok_or("the program's place in the ELF file is unknown")?;
    let at = (base + (insn::SLOT * prog.slot_of(site)) as u64) as usize;
    let slot = elf
        .get_mut(at..at + insn::SLOT)
        .ok_or("an instruction outside the file")?;
    let found = insn::decode(slot);
    if found.first().and_then(Insn::helper).is_none() {
        return Err(format!(
            "instruction {site} is not a helper call in the file"
        ));
    }
    slot.copy_from_slice(&replacement.encode());
    Ok(())
}

/// The stored state variables, decoded from the bytes of their sections.
pub(crate) fn vars_in_sections(
    places: &[VarPlace],
    sections: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    for var in places {
        if let Some(global) = var.global()
            && let Some(bytes) = sections.get(&global.section)
            && let Some(raw) =
                bytes.get(global.offset as usize..(global.offset + u64::from(global.size)) as usize)
        {
            vars.insert(var.name.clone(), decode(raw, &var.ty, var.scale.as_ref()));
        }
    }
    vars
}

/// A hash map's raw entries as the policy's map value (values at `scale`).
pub(crate) fn decode_map(
    entries: &[(Vec<u8>, Vec<u8>)],
    key_ty: &Type,
    value_ty: &Type,
    scale: Option<&BigInt>,
) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (decode(k, key_ty, None), decode(v, value_ty, scale)))
            .collect(),
    )
}

/// A stored value as the policy's value, by the contract's codec.
pub(crate) fn decode(bytes: &[u8], ty: &Type, scale: Option<&BigInt>) -> Value {
    Codec::new(ty.clone(), scale.cloned()).decode(bytes)
}
