//! The little of an object's BTF that the state contract needs: what each global-data
//! variable's type is (to find a `struct bpf_spin_lock` and the signedness of integers), and
//! which maps hold a lock in their values. Read from the `.BTF` section's bytes, following
//! the kernel's `Documentation/bpf/btf.rst`; anything unexpected makes the reader give up
//! (the object is then judged without BTF facts), never panic.

use std::collections::BTreeMap;

const MAGIC: u16 = 0xEB9F;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// The name of the lock's type.
pub const SPIN_LOCK: &str = "bpf_spin_lock";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Int {
        signed: bool,
    },
    /// Follows another type (pointer, typedef, const, volatile, restrict, type tag).
    Ptr(u32),
    Alias(u32),
    Array {
        element: u32,
    },
    Struct {
        members: Vec<Member>,
    },
    Var {
        ty: u32,
    },
    DataSec {
        vars: Vec<SecVar>,
    },
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    ty: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SecVar {
    ty: u32,
    offset: u32,
    size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Type {
    name: String,
    kind: Kind,
}

/// What BTF says about the object's globals and maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfFacts {
    /// `(section, variable)` → whether the variable is (or holds) a `bpf_spin_lock`, and
    /// whether it is a signed integer.
    pub globals: BTreeMap<(String, String), GlobalFacts>,
    /// Maps (by name) whose value type holds a `bpf_spin_lock`.
    pub maps_with_lock: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalFacts {
    pub holds_lock: bool,
    /// `Some(true)` for a signed integer, `Some(false)` unsigned, `None` not an integer.
    pub signed: Option<bool>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Option<u32> {
        let word = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_le_bytes(word.try_into().ok()?))
    }
}

fn string(strings: &[u8], offset: u32) -> String {
    let start = offset as usize;
    let Some(rest) = strings.get(start..) else {
        return String::new();
    };
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

/// The facts of a `.BTF` section, or `None` when it cannot be read.
pub fn read(section: &[u8]) -> Option<BtfFacts> {
    let types = parse(section)?;
    let lookup = |id: u32| types.get(id as usize);
    let mut facts = BtfFacts::default();
    for ty in &types {
        let Kind::DataSec { vars } = &ty.kind else {
            continue;
        };
        for var in vars {
            let Some(Type {
                name,
                kind: Kind::Var { ty: var_ty },
            }) = lookup(var.ty)
            else {
                continue;
            };
            if ty.name == ".maps" {
                if map_value_holds_lock(&types, *var_ty) {
                    facts.maps_with_lock.push(name.clone());
                }
                continue;
            }
            facts.globals.insert(
                (ty.name.clone(), name.clone()),
                GlobalFacts {
                    holds_lock: holds_lock(&types, *var_ty, 0),
                    signed: signedness(&types, *var_ty),
                },
            );
        }
    }
    Some(facts)
}

fn parse(section: &[u8]) -> Option<Vec<Type>> {
    let mut header = Reader {
        bytes: section,
        at: 0,
    };
    let first = header.u32()?;
    if first as u16 != MAGIC {
        return None;
    }
    let header_len = header.u32()? as usize;
    let (type_off, type_len) = (header.u32()? as usize, header.u32()? as usize);
    let (str_off, str_len) = (header.u32()? as usize, header.u32()? as usize);
    let type_bytes = section.get(header_len + type_off..header_len + type_off + type_len)?;
    let strings = section.get(header_len + str_off..header_len + str_off + str_len)?;
    let mut reader = Reader {
        bytes: type_bytes,
        at: 0,
    };
    // Type 0 is `void`.
    let mut types = vec![Type {
        name: String::new(),
        kind: Kind::Other,
    }];
    while reader.at < type_bytes.len() {
        let name = string(strings, reader.u32()?);
        let info = reader.u32()?;
        let size_or_type = reader.u32()?;
        let vlen = info & 0xffff;
        let kind = match (info >> 24) & 0x1f {
            KIND_INT => {
                let encoding = reader.u32()?;
                Kind::Int {
                    signed: (encoding >> 24) & 1 != 0,
                }
            }
            KIND_PTR => Kind::Ptr(size_or_type),
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                Kind::Alias(size_or_type)
            }
            KIND_ARRAY => {
                let element = reader.u32()?;
                reader.u32()?;
                reader.u32()?;
                Kind::Array { element }
            }
            KIND_STRUCT | KIND_UNION => {
                let mut members = Vec::new();
                for _ in 0..vlen {
                    let name = string(strings, reader.u32()?);
                    let ty = reader.u32()?;
                    reader.u32()?;
                    members.push(Member { name, ty });
                }
                Kind::Struct { members }
            }
            KIND_ENUM => {
                reader.at += 8 * vlen as usize;
                Kind::Other
            }
            KIND_ENUM64 => {
                reader.at += 12 * vlen as usize;
                Kind::Other
            }
            KIND_FUNC_PROTO => {
                reader.at += 8 * vlen as usize;
                Kind::Other
            }
            KIND_VAR => {
                reader.u32()?;
                Kind::Var { ty: size_or_type }
            }
            KIND_DATASEC => {
                let mut vars = Vec::new();
                for _ in 0..vlen {
                    vars.push(SecVar {
                        ty: reader.u32()?,
                        offset: reader.u32()?,
                        size: reader.u32()?,
                    });
                }
                Kind::DataSec { vars }
            }
            KIND_DECL_TAG => {
                reader.u32()?;
                Kind::Other
            }
            _ => Kind::Other,
        };
        types.push(Type { name, kind });
    }
    Some(types)
}

/// How deep type chains are followed; real programs nest a few levels.
const MAX_DEPTH: usize = 32;

fn holds_lock(types: &[Type], id: u32, depth: usize) -> bool {
    let Some(ty) = types.get(id as usize) else {
        return false;
    };
    if depth > MAX_DEPTH {
        return false;
    }
    match &ty.kind {
        Kind::Struct { .. } if ty.name == SPIN_LOCK => true,
        Kind::Struct { members } => members.iter().any(|m| holds_lock(types, m.ty, depth + 1)),
        Kind::Alias(next) => holds_lock(types, *next, depth + 1),
        Kind::Array { element } => holds_lock(types, *element, depth + 1),
        _ => false,
    }
}

/// A libbpf map definition is a struct whose `value` member points at the value's type.
fn map_value_holds_lock(types: &[Type], id: u32) -> bool {
    let Some(Type {
        kind: Kind::Struct { members },
        ..
    }) = types.get(id as usize)
    else {
        return false;
    };
    members.iter().any(|member| {
        member.name == "value"
            && matches!(types.get(member.ty as usize), Some(Type { kind: Kind::Ptr(value), .. }) if holds_lock(types, *value, 0))
    })
}

fn signedness(types: &[Type], id: u32) -> Option<bool> {
    let mut id = id;
    for _ in 0..MAX_DEPTH {
        match &types.get(id as usize)?.kind {
            Kind::Int { signed } => return Some(*signed),
            Kind::Alias(next) => id = *next,
            _ => return None,
        }
    }
    None
}
