//! The policy's state inside a loaded program, written from and read back into the
//! interpreter's `State` through the contract read from the object (LANGUAGE.md §4.3). The
//! loader uses it to run `init`, the differential tests to set pre-states and compare
//! post-states, and the checker to replay counterexamples.

use std::collections::BTreeMap;

use simplebpf_dsl::interp::{Record, State, Value};

use crate::contract::{Contract, EncodeError, GlobalPlace, Place, VarPlace};
use crate::kernel::{KernelError, LoadedProgram};
use crate::object_model::BpfObject;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("the object has no global `{0}`")]
    NoGlobal(String),
    #[error("`{name}`: {error}")]
    Encode { name: String, error: EncodeError },
    #[error("the state has no value for `{0}`")]
    Missing(String),
}

/// Global-data sections read from the kernel once and written back once per batch.
#[derive(Default)]
struct Sections(BTreeMap<String, Vec<u8>>);

impl Sections {
    fn slot<'s>(
        &'s mut self,
        loaded: &LoadedProgram,
        global: &GlobalPlace,
    ) -> Result<&'s mut [u8], StateError> {
        if !self.0.contains_key(&global.section) {
            let bytes = loaded.read_section(&global.section)?;
            self.0.insert(global.section.clone(), bytes);
        }
        let section = self.0.get_mut(&global.section).expect("inserted above");
        let start = (global.offset as usize).min(section.len());
        let end = (start + global.size as usize).min(section.len());
        Ok(&mut section[start..end])
    }

    fn patch(
        &mut self,
        loaded: &LoadedProgram,
        global: &GlobalPlace,
        bytes: &[u8],
    ) -> Result<(), StateError> {
        let slot = self.slot(loaded, global)?;
        let len = bytes.len().min(slot.len());
        slot[..len].copy_from_slice(&bytes[..len]);
        Ok(())
    }

    fn write_back(&self, loaded: &LoadedProgram) -> Result<(), StateError> {
        for (section, bytes) in &self.0 {
            loaded.write_section(section, bytes)?;
        }
        Ok(())
    }
}

fn encode(
    var: &VarPlace,
    codec: &crate::contract::Codec,
    value: &Value,
) -> Result<Vec<u8>, StateError> {
    codec.encode(value).map_err(|error| StateError::Encode {
        name: var.name.clone(),
        error,
    })
}

/// Writes every stored state variable of `state` into the program's globals and maps.
pub fn write_state(
    loaded: &LoadedProgram,
    contract: &Contract,
    state: &State,
) -> Result<(), StateError> {
    let mut sections = Sections::default();
    for var in &contract.vars {
        let value = state
            .vars
            .get(&var.name)
            .ok_or_else(|| StateError::Missing(var.name.clone()))?;
        match &var.place {
            Place::Constant(_) => {}
            Place::Global(global) | Place::RingBuf { len: global, .. } => {
                let bytes = encode(var, &var.codec(), value)?;
                sections.patch(loaded, global, &bytes)?;
            }
            Place::HashMap { map } => {
                let (Value::Map(entries), Some((key, codec))) = (value, var.map_codecs()) else {
                    return Err(StateError::Missing(var.name.clone()));
                };
                let mut encoded = Vec::new();
                for (k, v) in entries {
                    encoded.push((encode(var, &key, k)?, encode(var, &codec, v)?));
                }
                loaded.set_map_entries(map, &encoded)?;
            }
        }
    }
    sections.write_back(loaded)
}

/// The policy state the program holds now; constants keep their value.
pub fn read_state(loaded: &LoadedProgram, contract: &Contract) -> Result<State, StateError> {
    let mut sections = Sections::default();
    let mut vars = BTreeMap::new();
    for var in &contract.vars {
        let value = match &var.place {
            Place::Constant(value) => value.clone(),
            Place::Global(global) | Place::RingBuf { len: global, .. } => {
                var.codec().decode(sections.slot(loaded, global)?)
            }
            Place::HashMap { map } => var.decode_map(&loaded.map_entries(map)?),
        };
        vars.insert(var.name.clone(), value);
    }
    Ok(State { vars })
}

/// The records appended to each vector since the last call, decoded.
pub fn drain_records(
    loaded: &mut LoadedProgram,
    contract: &Contract,
) -> Result<Vec<Record>, StateError> {
    let mut records = Vec::new();
    for var in &contract.vars {
        if let (Place::RingBuf { map, .. }, Some(element)) = (&var.place, var.element_codec()) {
            for bytes in loaded.drain_ring_buffer(map)? {
                records.push(Record {
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
    let mut sections = Sections::default();
    let mut table = [0u8; 64];
    for (slot, draw) in table.chunks_mut(4).zip(draws) {
        slot.copy_from_slice(&draw.to_le_bytes());
    }
    let place = |name: &str| {
        object
            .global(name)
            .map(|g| GlobalPlace {
                section: g.section.clone(),
                offset: u64::from(g.offset),
                size: g.size,
                signed: None,
            })
            .ok_or_else(|| StateError::NoGlobal(name.to_string()))
    };
    sections.patch(loaded, &place("sb_test_draws")?, &table)?;
    sections.patch(loaded, &place("sb_test_draw_next")?, &0u32.to_le_bytes())?;
    sections.patch(loaded, &place("sb_test_now")?, &now_ns.to_le_bytes())?;
    sections.write_back(loaded)
}
