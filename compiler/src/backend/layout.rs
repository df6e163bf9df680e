//! Where each state variable lives in the object (LANGUAGE.md §4.3), and how its value is
//! encoded in bytes there. The build report, the kernel test harness and the checker read
//! this; hand-written programs that follow the contract have the same layout.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::Type;

/// A scalar as stored: the C type and, for floats, the fixed-point scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub ty: Type,
    /// `value × scale` is stored for floats.
    pub scale: Option<BigInt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A global variable named after the state variable.
    Global(Scalar),
    /// Never written after `init` and known at build time: folded into the code.
    Folded(Value),
    /// A `BPF_MAP_TYPE_HASH` named after the state variable.
    HashMap {
        key: Scalar,
        value: Scalar,
        capacity: u64,
    },
    /// A `BPF_MAP_TYPE_RINGBUF` named after the state variable, plus a global `<name>_len`.
    RingBuf { element: Scalar },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarLayout {
    pub name: String,
    pub ty: Type,
    pub storage: Storage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub vars: Vec<VarLayout>,
    /// Whether the program takes a `bpf_spin_lock` (in the one-entry array map `sb_lock`).
    pub lock: bool,
    /// Whether `init` reads `current_time()`: a loader must run it at load time and write
    /// the result (simplebpf's loader does); the object's initial data is `init` at time 0.
    pub init_reads_time: bool,
    /// A test build: draws and time come from the globals `sb_test_draws`, `sb_test_draw_next`
    /// and `sb_test_now`. Never shipped.
    pub test_hooks: bool,
}

impl Layout {
    pub fn var(&self, name: &str) -> Option<&VarLayout> {
        self.vars.iter().find(|var| var.name == name)
    }

    /// `(name, scale)` of every stored float, for the report.
    pub fn float_scales(&self) -> Vec<(String, BigInt)> {
        let mut scales = Vec::new();
        for var in &self.vars {
            match &var.storage {
                Storage::Global(scalar) => {
                    if let Some(scale) = &scalar.scale {
                        scales.push((var.name.clone(), scale.clone()));
                    }
                }
                Storage::HashMap { value, .. } => {
                    if let Some(scale) = &value.scale {
                        scales.push((format!("{}[value]", var.name), scale.clone()));
                    }
                }
                Storage::RingBuf { element } => {
                    if let Some(scale) = &element.scale {
                        scales.push((format!("{}[record]", var.name), scale.clone()));
                    }
                }
                Storage::Folded(_) => {}
            }
        }
        scales
    }
}

/// Why a value cannot be stored: it does not fit the 64-bit encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} does not fit the stored encoding of {ty}")]
pub struct EncodeError {
    pub value: String,
    pub ty: String,
}

impl Scalar {
    pub fn size(&self) -> usize {
        c_size(&self.ty)
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
            _ => return Err(fail()),
        })
    }

    /// The value stored in `bytes` (any bytes decode: user space may write anything).
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

pub fn c_type(ty: &Type) -> &'static str {
    match ty {
        Type::Int | Type::Float => "__s64",
        Type::Bool => "__u8",
        _ => "__u64",
    }
}

pub fn c_size(ty: &Type) -> usize {
    match ty {
        Type::Bool => 1,
        _ => 8,
    }
}
