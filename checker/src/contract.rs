//! Where each state variable lives in an object, found the way LANGUAGE.md §4.3 says any
//! program (ours, an LLM's, a hand-written one) must place it: a global of the variable's
//! name, a hash map or ring buffer of its name, or nothing for a variable no handler writes.
//! A float's scale (a float global's, a map's float values', a vector's float records') is
//! read from the object's `__scale_<name>` in `.rodata`.

use num_bigint::BigInt;
use simplebpf_compiler::object_model::{BpfObject, MapKind};
use simplebpf_dsl::interp::{self, Value};
use simplebpf_dsl::ir::{Program, Type};

#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Global {
        section: String,
        offset: u64,
        size: u32,
    },
    /// Not written by any handler: its `init` value, which the program may fold.
    Constant(Value),
    HashMap {
        map: String,
    },
    RingBuf {
        map: String,
        len: Box<Place>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct VarPlace {
    pub name: String,
    pub ty: Type,
    pub place: Place,
    pub scale: Option<BigInt>,
}

impl VarPlace {
    /// The global holding the variable's stored value — the variable itself, or a vector's
    /// `<name>_len` — as (section, offset, size).
    pub fn global(&self) -> Option<(&str, u64, u32)> {
        let place = match &self.place {
            Place::RingBuf { len, .. } => len.as_ref(),
            place => place,
        };
        match place {
            Place::Global {
                section,
                offset,
                size,
            } => Some((section, *offset, *size)),
            _ => None,
        }
    }
}

/// Every state variable's place, or the reason the object does not follow the contract.
pub fn places(program: &Program, object: &BpfObject) -> Result<Vec<VarPlace>, String> {
    let at_zero = interp::load(program, &[], 0).map_err(|e| format!("init cannot run: {e}"))?;
    // A constant must not depend on when the program was loaded.
    let later = interp::load(program, &[], 1_000_000_007_000_000_007)
        .map_err(|e| format!("init cannot run: {e}"))?;
    let mut places = Vec::new();
    for var in &program.state {
        let global = |name: &str| {
            object.global(name).map(|g| Place::Global {
                section: g.section.clone(),
                offset: u64::from(g.offset),
                size: g.size,
            })
        };
        let place = if let Some(place) = global(&var.name) {
            place
        } else if let Some(map) = object.map(&var.name) {
            match map.kind {
                MapKind::Hash => Place::HashMap {
                    map: var.name.clone(),
                },
                MapKind::RingBuf => Place::RingBuf {
                    map: var.name.clone(),
                    len: Box::new(global(&format!("{}_len", var.name)).ok_or_else(|| {
                        format!(
                            "the ring buffer `{}` has no `{}_len` global",
                            var.name, var.name
                        )
                    })?),
                },
                _ => {
                    return Err(format!(
                        "the map `{}` is not a hash map or ring buffer",
                        var.name
                    ));
                }
            }
        } else if !var.written_by_handlers {
            let value = at_zero.state.vars[&var.name].clone();
            if later.state.vars[&var.name] != value {
                return Err(format!(
                    "`{}` is not in the object, and its init value depends on the load time",
                    var.name
                ));
            }
            Place::Constant(value)
        } else {
            return Err(format!(
                "the policy writes `{}`, but the object has no global or map of that name (docs/language.md §4.3)",
                var.name
            ));
        };
        // A float is stored at a scale wherever it lives: a global, a map's values, a
        // vector's records (the backend emits `__scale_<name>` for each).
        let stores_float = match &var.ty {
            Type::Float => true,
            Type::Map(_, value) => **value == Type::Float,
            Type::Vec(element) => **element == Type::Float,
            _ => false,
        };
        let scale = if stores_float && !matches!(place, Place::Constant(_)) {
            Some(scale_of(object, &var.name)?)
        } else {
            None
        };
        if let Place::Global { size, .. } = &place {
            let expected = if var.ty == Type::Bool { 1 } else { 8 };
            if *size != expected {
                return Err(format!(
                    "the global `{}` has {size} bytes; a {} takes {expected}",
                    var.name, var.ty
                ));
            }
        }
        places.push(VarPlace {
            name: var.name.clone(),
            ty: var.ty.clone(),
            place,
            scale,
        });
    }
    Ok(places)
}

fn scale_of(object: &BpfObject, name: &str) -> Result<BigInt, String> {
    let symbol = format!("__scale_{name}");
    let global = object.global(&symbol).ok_or_else(|| {
        format!("the float `{name}` has no `{symbol}` in .rodata (docs/language.md §4.3)")
    })?;
    let map = object.map(&global.section).ok_or_else(|| {
        format!(
            "`{symbol}` is in `{}`, which the object does not define",
            global.section
        )
    })?;
    let start = global.offset as usize;
    let bytes = map
        .initial
        .get(start..start + 8)
        .ok_or_else(|| format!("`{symbol}` is not 8 bytes"))?;
    let scale = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    if scale <= 0 {
        return Err(format!("`{symbol}` is {scale}; a scale must be positive"));
    }
    Ok(BigInt::from(scale))
}
