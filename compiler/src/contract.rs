//! The state contract of LANGUAGE.md §4.3, read back from an object: where each state
//! variable of a policy lives (a global in any global-data section, a hash map, a ring
//! buffer with its length global, or nowhere because it is a constant), how its values are
//! encoded there (width, scale), and where the lock is.
//!
//! This is the only code that knows the contract's names (`__scale_<name>`, `<name>_len`):
//! the rules backend writes objects through the names given here, and everything that reads
//! an object — the checker, the replay, the pre-tests, the loader's state I/O, the report —
//! reads it through `read`, whoever wrote the object.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};
use simplebpf_dsl::interp::{self, Value};
use simplebpf_dsl::ir::{Program, Type};

use crate::object_model::{BpfObject, MapKind};

/// The global that holds a float state variable's fixed-point scale.
pub fn scale_symbol(var: &str) -> String {
    format!("__scale_{var}")
}

/// The global that counts a vector's appends.
pub fn len_symbol(var: &str) -> String {
    format!("{var}_len")
}

/// How a scalar value is stored: its type and, for floats, the fixed-point scale (the
/// stored integer is `value × scale`). Integers, floats and Instants take 8 bytes, booleans
/// one, little endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub ty: Type,
    pub scale: Option<BigInt>,
}

/// Why a value cannot be stored: it does not fit the 64-bit encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} does not fit the stored encoding of {ty}")]
pub struct EncodeError {
    pub value: String,
    pub ty: String,
}

impl Codec {
    pub fn new(ty: Type, scale: Option<BigInt>) -> Codec {
        Codec { ty, scale }
    }

    pub fn size(&self) -> usize {
        stored_size(&self.ty)
    }

    pub fn c_type(&self) -> &'static str {
        c_type(&self.ty)
    }

    /// Little-endian bytes of a value as the program stores it.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, EncodeError> {
        let fail = || EncodeError {
            value: value.to_string(),
            ty: self.ty.to_string(),
        };
        Ok(match value {
            Value::Int(v) => v.to_le_bytes().to_vec(),
            Value::Uint(v) | Value::Instant(v) => v.to_le_bytes().to_vec(),
            Value::Bool(v) => vec![u8::from(*v)],
            Value::Float(v) => {
                let scale = self.scale.clone().unwrap_or_else(|| BigInt::from(1));
                let scaled = v * BigRational::from_integer(scale);
                if !scaled.is_integer() {
                    return Err(fail());
                }
                scaled
                    .to_integer()
                    .to_i64()
                    .ok_or_else(fail)?
                    .to_le_bytes()
                    .to_vec()
            }
            Value::Vec(len) => len.to_le_bytes().to_vec(),
            _ => return Err(fail()),
        })
    }

    /// The value stored in `bytes` (any bytes decode: user space may write anything). A
    /// vector's stored value is its length.
    pub fn decode(&self, bytes: &[u8]) -> Value {
        let word = |bytes: &[u8]| {
            let mut buf = [0u8; 8];
            buf[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
            u64::from_le_bytes(buf)
        };
        match self.ty {
            Type::Int => Value::Int(word(bytes) as i64),
            Type::Uint => Value::Uint(word(bytes)),
            Type::Instant => Value::Instant(word(bytes)),
            Type::Bool => Value::Bool(bytes.first().is_some_and(|b| *b != 0)),
            Type::Vec(_) => Value::Vec(word(bytes)),
            Type::Float => {
                let scale = self.scale.clone().unwrap_or_else(|| BigInt::from(1));
                let raw = BigInt::from(word(bytes) as i64);
                Value::Float(if scale.is_zero() {
                    BigRational::from_integer(raw)
                } else {
                    BigRational::new(raw, scale)
                })
            }
            _ => Value::Bool(false),
        }
    }
}

/// Whether a type is a scalar the eBPF target stores.
pub fn is_scalar(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Int | Type::Uint | Type::Bool | Type::Instant | Type::Float
    )
}

/// The C type a scalar is stored as.
pub fn c_type(ty: &Type) -> &'static str {
    match ty {
        Type::Int | Type::Float => "__s64",
        Type::Bool => "__u8",
        _ => "__u64",
    }
}

/// Bytes a stored scalar (or a vector's length) takes.
pub fn stored_size(ty: &Type) -> usize {
    match ty {
        Type::Bool => 1,
        _ => 8,
    }
}

/// A global variable: its section, offset and size, and whether BTF calls it a signed
/// integer (`None` without BTF or for another type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalPlace {
    pub section: String,
    pub offset: u64,
    pub size: u32,
    pub signed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Global(GlobalPlace),
    /// Not written by any handler: its `init` value, which the program may fold.
    Constant(Value),
    HashMap {
        map: String,
    },
    RingBuf {
        map: String,
        len: GlobalPlace,
    },
}

/// Where one state variable lives and how its values are encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct VarPlace {
    pub name: String,
    pub ty: Type,
    pub place: Place,
    /// The fixed-point scale of the floats it stores (a float global, a map's float values,
    /// a vector's float records).
    pub scale: Option<BigInt>,
}

impl VarPlace {
    /// The global holding the variable's stored value — the variable itself, or a vector's
    /// length.
    pub fn global(&self) -> Option<&GlobalPlace> {
        match &self.place {
            Place::Global(global) => Some(global),
            Place::RingBuf { len, .. } => Some(len),
            _ => None,
        }
    }

    /// How the value in `global()` is encoded: the variable's own for a scalar, a `u64`
    /// count for a vector.
    pub fn codec(&self) -> Codec {
        Codec::new(self.ty.clone(), self.scale.clone())
    }

    /// How a map's keys and values are encoded.
    pub fn map_codecs(&self) -> Option<(Codec, Codec)> {
        match &self.ty {
            Type::Map(key, value) => Some((
                Codec::new((**key).clone(), None),
                Codec::new((**value).clone(), self.scale.clone()),
            )),
            _ => None,
        }
    }

    /// How a vector's records are encoded.
    pub fn element_codec(&self) -> Option<Codec> {
        match &self.ty {
            Type::Vec(element) => Some(Codec::new((**element).clone(), self.scale.clone())),
            _ => None,
        }
    }

    /// A map's entries (raw key and value bytes) as the policy's map value.
    pub fn decode_map(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Value {
        let Some((key, value)) = self.map_codecs() else {
            return Value::Map(Default::default());
        };
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (key.decode(k), value.decode(v)))
                .collect(),
        )
    }
}

/// Where the program keeps the `bpf_spin_lock` of LANGUAGE.md §4.5, if BTF shows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockPlace {
    /// A global (or a struct holding one) in a global-data section.
    Global { section: String, name: String },
    /// The value of an array map.
    Map { map: String },
}

/// The whole contract of one object for one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// One per state variable, in declaration order.
    pub vars: Vec<VarPlace>,
    pub lock: Option<LockPlace>,
}

impl Contract {
    pub fn var(&self, name: &str) -> Option<&VarPlace> {
        self.vars.iter().find(|var| var.name == name)
    }

    /// `(name, scale)` of every stored float, for the report.
    pub fn float_scales(&self) -> Vec<(String, BigInt)> {
        self.vars
            .iter()
            .filter(|var| !matches!(var.place, Place::Constant(_)))
            .filter_map(|var| {
                let scale = var.scale.clone()?;
                let name = match &var.ty {
                    Type::Map(..) => format!("{}[value]", var.name),
                    Type::Vec(_) => format!("{}[record]", var.name),
                    _ => var.name.clone(),
                };
                Some((name, scale))
            })
            .collect()
    }
}

/// Why an object does not follow the contract for a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("the policy's init cannot run: {0}")]
    Init(String),
    #[error(
        "the policy writes `{name}`, but the object has no global or map of that name (docs/language.md §4.3)"
    )]
    Missing { name: String },
    #[error("`{name}` is not in the object, and its init value depends on the load time")]
    TimeDependentConstant { name: String },
    #[error("the map `{name}` is not a hash map or ring buffer")]
    WrongMapKind { name: String },
    #[error("the ring buffer `{name}` has no `{len}` global")]
    NoLength { name: String, len: String },
    #[error("the global `{name}` has {size} bytes; a {ty} takes {expected}")]
    WrongSize {
        name: String,
        size: u32,
        ty: String,
        expected: usize,
    },
    #[error("the float `{name}` has no `{symbol}` in .rodata (docs/language.md §4.3)")]
    NoScale { name: String, symbol: String },
    #[error("`{symbol}` is {detail}; a scale is a positive 64-bit integer in .rodata")]
    BadScale { symbol: String, detail: String },
}

/// Reads the contract of `object` for `program`.
pub fn read(program: &Program, object: &BpfObject) -> Result<Contract, ContractError> {
    let init =
        |time| interp::load(program, &[], time).map_err(|err| ContractError::Init(err.to_string()));
    let at_zero = init(0)?;
    // A constant must not depend on when the program was loaded.
    let later = init(1_000_000_007_000_000_007)?;
    let mut vars = Vec::new();
    for var in &program.state {
        let place = if let Some(place) = global(object, &var.name) {
            Place::Global(place)
        } else if let Some(map) = object.map(&var.name) {
            match map.kind {
                MapKind::Hash => Place::HashMap {
                    map: var.name.clone(),
                },
                MapKind::RingBuf => {
                    let len = len_symbol(&var.name);
                    Place::RingBuf {
                        map: var.name.clone(),
                        len: global(object, &len).ok_or_else(|| ContractError::NoLength {
                            name: var.name.clone(),
                            len,
                        })?,
                    }
                }
                _ => {
                    return Err(ContractError::WrongMapKind {
                        name: var.name.clone(),
                    });
                }
            }
        } else if !var.written_by_handlers {
            let value = at_zero.state.vars[&var.name].clone();
            if later.state.vars[&var.name] != value {
                return Err(ContractError::TimeDependentConstant {
                    name: var.name.clone(),
                });
            }
            Place::Constant(value)
        } else {
            return Err(ContractError::Missing {
                name: var.name.clone(),
            });
        };
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
        if let Place::Global(global) = &place {
            let expected = stored_size(&var.ty);
            if global.size as usize != expected {
                return Err(ContractError::WrongSize {
                    name: var.name.clone(),
                    size: global.size,
                    ty: var.ty.to_string(),
                    expected,
                });
            }
        }
        vars.push(VarPlace {
            name: var.name.clone(),
            ty: var.ty.clone(),
            place,
            scale,
        });
    }
    Ok(Contract {
        vars,
        lock: lock(object),
    })
}

fn global(object: &BpfObject, name: &str) -> Option<GlobalPlace> {
    let global = object.global(name)?;
    let signed = object
        .btf
        .as_ref()
        .and_then(|btf| {
            btf.globals
                .get(&(global.section.clone(), global.name.clone()))
        })
        .and_then(|facts| facts.signed);
    Some(GlobalPlace {
        section: global.section.clone(),
        offset: u64::from(global.offset),
        size: global.size,
        signed,
    })
}

fn lock(object: &BpfObject) -> Option<LockPlace> {
    let btf = object.btf.as_ref()?;
    if let Some(((section, name), _)) = btf.globals.iter().find(|(_, facts)| facts.holds_lock) {
        return Some(LockPlace::Global {
            section: section.clone(),
            name: name.clone(),
        });
    }
    btf.maps_with_lock
        .first()
        .map(|map| LockPlace::Map { map: map.clone() })
}

fn scale_of(object: &BpfObject, name: &str) -> Result<BigInt, ContractError> {
    let symbol = scale_symbol(name);
    let bad = |detail: String| ContractError::BadScale {
        symbol: symbol.clone(),
        detail,
    };
    let global = object
        .global(&symbol)
        .ok_or_else(|| ContractError::NoScale {
            name: name.to_string(),
            symbol: symbol.clone(),
        })?;
    let map = object.map(&global.section).ok_or_else(|| {
        bad(format!(
            "in `{}`, which the object does not define",
            global.section
        ))
    })?;
    let start = global.offset as usize;
    let bytes = map
        .initial
        .get(start..start + 8)
        .filter(|_| global.size == 8)
        .ok_or_else(|| bad(format!("{} bytes", global.size)))?;
    let scale = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    if scale <= 0 {
        return Err(bad(scale.to_string()));
    }
    Ok(BigInt::from(scale))
}
