//! The policy's state inside a loaded program: written from and read back into the
//! interpreter's `State`, through the layout contract (LANGUAGE.md §4.3). The loader uses it
//! to run `init`, the differential tests to set pre-states and compare post-states, and the
//! checker to replay counterexamples.

use std::collections::BTreeMap;

use simplebpf_dsl::interp::{State, Value};

use crate::backend::layout::{Layout, Scalar, Storage};
use crate::kernel::{KernelError, LoadedProgram};
use crate::object_model::BpfObject;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(
        "the object has no global `{0}` (docs/language.md §4.3 names globals after state variables)"
    )]
    NoGlobal(String),
    #[error("`{name}`: {error}")]
    Encode {
        name: String,
        error: crate::backend::EncodeError,
    },
    #[error("the state has no value for `{0}`")]
    Missing(String),
}

/// Writes every stored state variable of `state` into the program's globals and maps.
pub fn write_state(
    loaded: &LoadedProgram,
    object: &BpfObject,
    layout: &Layout,
    state: &State,
) -> Result<(), StateError> {
    let mut sections: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for var in &layout.vars {
        let value = state
            .vars
            .get(&var.name)
            .ok_or_else(|| StateError::Missing(var.name.clone()))?;
        let encode = |scalar: &Scalar, value: &Value| {
            scalar.encode(value).map_err(|error| StateError::Encode {
                name: var.name.clone(),
                error,
            })
        };
        match &var.storage {
            Storage::Folded(_) => {}
            Storage::Global(scalar) => {
                let bytes = encode(scalar, value)?;
                patch_global(loaded, object, &mut sections, &var.name, &bytes)?;
            }
            Storage::HashMap { key, value: v, .. } => {
                let Value::Map(entries) = value else {
                    return Err(StateError::Missing(var.name.clone()));
                };
                let mut encoded = Vec::new();
                for (k, val) in entries {
                    encoded.push((encode(key, k)?, encode(v, val)?));
                }
                loaded.set_map_entries(&var.name, &encoded)?;
            }
            Storage::RingBuf { .. } => {
                let Value::Vec(len) = value else {
                    return Err(StateError::Missing(var.name.clone()));
                };
                patch_global(
                    loaded,
                    object,
                    &mut sections,
                    &format!("{}_len", var.name),
                    &len.to_le_bytes(),
                )?;
            }
        }
    }
    for (section, bytes) in &sections {
        loaded.write_section(section, bytes)?;
    }
    Ok(())
}

/// The bytes of `name` inside its section, the section read from the kernel once per batch.
fn global_slot<'s>(
    loaded: &LoadedProgram,
    object: &BpfObject,
    sections: &'s mut BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Result<&'s mut [u8], StateError> {
    let global = object
        .global(name)
        .ok_or_else(|| StateError::NoGlobal(name.to_string()))?;
    if !sections.contains_key(&global.section) {
        sections.insert(
            global.section.clone(),
            loaded.read_section(&global.section)?,
        );
    }
    let section = sections.get_mut(&global.section).expect("inserted above");
    let start = (global.offset as usize).min(section.len());
    let end = (start + global.size as usize).min(section.len());
    Ok(&mut section[start..end])
}

fn patch_global(
    loaded: &LoadedProgram,
    object: &BpfObject,
    sections: &mut BTreeMap<String, Vec<u8>>,
    name: &str,
    bytes: &[u8],
) -> Result<(), StateError> {
    let slot = global_slot(loaded, object, sections, name)?;
    let len = bytes.len().min(slot.len());
    slot[..len].copy_from_slice(&bytes[..len]);
    Ok(())
}

fn read_global(
    loaded: &LoadedProgram,
    object: &BpfObject,
    sections: &mut BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Result<Vec<u8>, StateError> {
    Ok(global_slot(loaded, object, sections, name)?.to_vec())
}

/// The policy state the program holds now; folded variables keep their constant value.
pub fn read_state(
    loaded: &LoadedProgram,
    object: &BpfObject,
    layout: &Layout,
) -> Result<State, StateError> {
    let mut sections = BTreeMap::new();
    let mut vars = BTreeMap::new();
    for var in &layout.vars {
        let value = match &var.storage {
            Storage::Folded(value) => value.clone(),
            Storage::Global(scalar) => {
                scalar.decode(&read_global(loaded, object, &mut sections, &var.name)?)
            }
            Storage::HashMap { key, value, .. } => Value::Map(
                loaded
                    .map_entries(&var.name)?
                    .into_iter()
                    .map(|(k, v)| (key.decode(&k), value.decode(&v)))
                    .collect(),
            ),
            Storage::RingBuf { .. } => {
                let bytes =
                    read_global(loaded, object, &mut sections, &format!("{}_len", var.name))?;
                let mut word = [0u8; 8];
                word[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
                Value::Vec(u64::from_le_bytes(word))
            }
        };
        vars.insert(var.name.clone(), value);
    }
    Ok(State { vars })
}

/// The records appended to each vector since the last call, decoded.
pub fn drain_records(
    loaded: &mut LoadedProgram,
    layout: &Layout,
) -> Result<Vec<simplebpf_dsl::interp::Record>, StateError> {
    let mut records = Vec::new();
    for var in &layout.vars {
        if let Storage::RingBuf { element } = &var.storage {
            for bytes in loaded.drain_ring_buffer(&var.name)? {
                records.push(simplebpf_dsl::interp::Record {
                    vec: var.name.clone(),
                    value: element.decode(&bytes),
                });
            }
        }
    }
    Ok(records)
}

/// Sets the draws and the time a test build reads (`Layout::test_hooks`).
pub fn set_test_inputs(
    loaded: &LoadedProgram,
    object: &BpfObject,
    draws: &[u32],
    now_ns: u64,
) -> Result<(), StateError> {
    let mut sections = BTreeMap::new();
    let mut table = [0u8; 64];
    for (slot, draw) in table.chunks_mut(4).zip(draws) {
        slot.copy_from_slice(&draw.to_le_bytes());
    }
    patch_global(loaded, object, &mut sections, "sb_test_draws", &table)?;
    patch_global(
        loaded,
        object,
        &mut sections,
        "sb_test_draw_next",
        &0u32.to_le_bytes(),
    )?;
    patch_global(
        loaded,
        object,
        &mut sections,
        "sb_test_now",
        &now_ns.to_le_bytes(),
    )?;
    for (section, bytes) in &sections {
        loaded.write_section(section, bytes)?;
    }
    Ok(())
}
