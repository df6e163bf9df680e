//! Memory: global-data sections, the stack, the packet, map values, and the loads, stores
//! and atomics that reach them.

use std::collections::BTreeMap;

use simplebpf_compiler::object_model::Insn;
use simplebpf_compiler::object_model::insn::{AtomicOp, Size, Source};
use z3::ast::{Array, Ast, BV};

use super::step::Step;
use super::step::{key_bits, map_arg};
use super::{
    Access, AccessKind, Location, Region, Slot, State, Unknown, Val, bv, reg, scalar, set, unknown,
};

/// A global-data section. Offsets are constants (a symbolic one is "unknown"), so no array
/// theory is needed. The pre-state is one constant per field that a state variable occupies
/// (`fields`), and one 8-bit constant per other byte; writes are kept as the values written
/// (`cells`), so that a read of exactly what was written, or of exactly a variable's field,
/// is that one term — the program's and the policy's terms for a variable are then the same
/// term, not a concatenation of bytes the solver must put back together.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// The contents of a read-only section (`.rodata`): fixed, not inputs.
    pub fixed: Option<Vec<u8>>,
    /// `offset → size` of the fields whose pre-state is one constant.
    pub fields: BTreeMap<u64, u32>,
    /// `offset → value` of what this path wrote; cells do not overlap.
    pub cells: BTreeMap<u64, BV>,
}

impl Section {
    pub fn new(name: &str, fixed: Option<Vec<u8>>, fields: BTreeMap<u64, u32>) -> Section {
        Section {
            name: name.to_string(),
            fixed,
            fields,
            cells: BTreeMap::new(),
        }
    }

    /// The pre-state constant of the field at `offset` of `size` bytes.
    fn field(&self, offset: u64, size: u32) -> BV {
        BV::new_const(format!("pre{}@{offset}:{size}", self.name), size * 8)
    }

    /// The cell holding byte `offset`, as (its offset, its value).
    fn cell_at(&self, offset: u64) -> Option<(u64, &BV)> {
        let (start, value) = self.cells.range(..=offset).next_back()?;
        (offset < start + u64::from(value.get_size() / 8)).then_some((*start, value))
    }

    fn field_at(&self, offset: u64) -> Option<(u64, u32)> {
        let (start, size) = self.fields.range(..=offset).next_back()?;
        (offset < start + u64::from(*size)).then_some((*start, *size))
    }

    pub fn byte(&self, offset: u64) -> BV {
        if let Some((start, value)) = self.cell_at(offset) {
            let bit = ((offset - start) * 8) as u32;
            return value.extract(bit + 7, bit);
        }
        if let Some(bytes) = &self.fixed {
            return bv(
                u64::from(bytes.get(offset as usize).copied().unwrap_or(0)),
                8,
            );
        }
        if let Some((start, size)) = self.field_at(offset) {
            let bit = ((offset - start) * 8) as u32;
            return self.field(start, size).extract(bit + 7, bit);
        }
        BV::new_const(format!("pre{}@{offset}", self.name), 8)
    }

    /// `size` bytes at `offset`, little endian.
    pub fn read(&self, offset: u64, size: u32) -> BV {
        if let Some(value) = self.cells.get(&offset)
            && value.get_size() == size * 8
        {
            return value.clone();
        }
        let end = offset + u64::from(size);
        let untouched = self
            .cells
            .range(..end)
            .next_back()
            .is_none_or(|(start, value)| start + u64::from(value.get_size() / 8) <= offset);
        if untouched && self.fixed.is_none() && self.fields.get(&offset) == Some(&size) {
            return self.field(offset, size);
        }
        (0..u64::from(size))
            .map(|i| self.byte(offset + i))
            .rev()
            .reduce(|acc, b| acc.concat(&b))
            .expect("at least one byte")
    }

    /// Stores `value` (a whole number of bytes) at `offset`; cells it overlaps keep only
    /// their bytes outside it.
    pub fn write(&mut self, offset: u64, value: BV) {
        let end = offset + u64::from(value.get_size() / 8);
        let overlapping: Vec<u64> = self
            .cells
            .range(..end)
            .filter(|(start, cell)| *start + u64::from(cell.get_size() / 8) > offset)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            let cell = self.cells.remove(&start).expect("listed");
            for i in 0..u64::from(cell.get_size() / 8) {
                let at = start + i;
                if at < offset || at >= end {
                    let bit = (i * 8) as u32;
                    self.cells.insert(at, cell.extract(bit + 7, bit));
                }
            }
        }
        self.cells.insert(offset, value);
    }
}

/// `bpf_map_lookup_elem`: a pointer to the value where the key is present, NULL elsewhere.
pub(crate) fn map_lookup(state: &mut State) -> Result<Step, Unknown> {
    let map = map_arg(state, 1)?;
    let key = read_ptr_bits(state, 2, key_bits(state, &map)?)?;
    state.map_keys.push((map.clone(), key.clone()));
    let present = state.maps[&map]
        .present
        .select(&key)
        .as_bool()
        .expect("a presence bit");
    for r in 1..=5 {
        state.regs[r] = None;
    }
    let hit = Val::Ptr {
        region: Region::MapValue { map, key },
        off: bv(0, 64),
    };
    Ok(Step::Lookup {
        present: present.simplify(),
        hit,
    })
}

/// Reads `bits` bits through the pointer in register `r`.
pub(crate) fn read_ptr_bits(state: &State, r: u8, bits: u32) -> Result<BV, Unknown> {
    match reg(state, r)? {
        Val::Ptr { region, off } => read(state, &region, &off, bits / 8),
        _ => Err(unknown(state, format!("r{r} should be a pointer"))),
    }
}

pub(crate) fn load(
    state: &mut State,
    insn: &Insn,
    size: Size,
    sign_extend: bool,
) -> Result<(), Unknown> {
    let size = size.bytes();
    let Val::Ptr { region, off } = reg(state, insn.src)? else {
        return Err(unknown(
            state,
            "a load through something that is not a pointer",
        ));
    };
    let off = off.bvadd(BV::from_i64(i64::from(insn.off), 64));
    record_access(state, AccessKind::Load, &region, &off, size);
    let value = if let Region::Ctx = region {
        ctx_load(state, &off, size)?
    } else if let Some(spilled) = spilled_pointer(state, &region, &off, size) {
        spilled
    } else {
        let raw = read(state, &region, &off, size)?;
        Val::Scalar(extend(raw, size, sign_extend))
    };
    set(state, insn.dst, value);
    Ok(())
}

/// A pointer (or map) spilled whole to the stack at `off`, read back whole.
fn spilled_pointer(state: &State, region: &Region, off: &BV, size: u32) -> Option<Val> {
    if !matches!(region, Region::Stack) || size != 8 {
        return None;
    }
    let base = off.simplify().as_u64()?;
    let Some(Slot::Ptr { val, byte: 0 }) = state.stack.get(&base) else {
        return None;
    };
    let whole = (1..8u8).all(|i| {
        matches!(state.stack.get(&(base + u64::from(i))), Some(Slot::Ptr { byte, .. }) if *byte == i)
    });
    whole.then(|| val.clone())
}

pub(crate) fn extend(raw: BV, size: u32, signed: bool) -> BV {
    if size == 8 {
        raw
    } else if signed {
        raw.sign_ext(64 - size * 8)
    } else {
        raw.zero_ext(64 - size * 8)
    }
}

/// `struct xdp_md`: `data` (offset 0) and `data_end` (offset 4) become packet pointers.
fn ctx_load(state: &State, off: &BV, size: u32) -> Result<Val, Unknown> {
    match (off.simplify().as_u64(), size) {
        (Some(0), 4) => Ok(Val::Ptr {
            region: Region::Packet,
            off: bv(0, 64),
        }),
        (Some(4), 4) => Ok(Val::Ptr {
            region: Region::Packet,
            off: state.packet_len.clone(),
        }),
        (Some(other), _) => Err(unknown(
            state,
            format!("xdp_md field at offset {other} is not modelled"),
        )),
        (None, _) => Err(unknown(
            state,
            "a ctx read at an offset not known statically",
        )),
    }
}

/// The constant an offset simplifies to; "unknown" for `what` when it is symbolic (the
/// model addresses stack, sections and map values by constant offsets).
pub(crate) fn static_offset(state: &State, off: &BV, what: &str) -> Result<u64, Unknown> {
    off.simplify().as_u64().ok_or_else(|| {
        unknown(
            state,
            format!("{what} access at an offset not known statically"),
        )
    })
}

pub(crate) fn read(state: &State, region: &Region, off: &BV, size: u32) -> Result<BV, Unknown> {
    let bytes: Vec<BV> = match region {
        Region::Stack => {
            let base = static_offset(state, off, "a stack")?;
            if let Some(whole) = spilled_whole(state, base, size) {
                return Ok(whole);
            }
            (0..u64::from(size))
                .map(|i| match state.stack.get(&(base + i)) {
                    Some(Slot::Data { whole, byte }) => Ok(whole.extract(byte * 8 + 7, byte * 8)),
                    Some(Slot::Ptr { .. }) => Err(unknown(
                        state,
                        "a pointer spilled to the stack read as a number",
                    )),
                    None => Err(unknown(state, "a read of uninitialised stack")),
                })
                .collect::<Result<_, _>>()?
        }
        Region::Packet => (0..u64::from(size))
            .map(|i| select_byte(&state.packet, &off.bvadd(bv(i, 64))))
            .collect(),
        Region::Section(name) => {
            let section = state
                .sections
                .get(name)
                .ok_or_else(|| unknown(state, format!("section `{name}` is not in the model")))?;
            let base = static_offset(state, off, "a global-data")?;
            return Ok(section.read(base, size));
        }
        Region::MapValue { map, key } => {
            let entry = &state.maps[map];
            let value = entry.values.select(key).as_bv().expect("a value");
            let base = static_offset(state, off, "a map-value")?;
            (0..u64::from(size))
                .map(|i| {
                    let bit = ((base + i) * 8) as u32;
                    if bit + 8 > entry.value_bits {
                        Err(unknown(state, "a read past the end of a map value"))
                    } else {
                        Ok(value.extract(bit + 7, bit))
                    }
                })
                .collect::<Result<_, _>>()?
        }
        Region::Ctx => return Err(unknown(state, "a ctx read through a derived pointer")),
    };
    // Little endian: the byte at the highest address is the most significant.
    Ok(bytes
        .into_iter()
        .rev()
        .reduce(|acc, b| acc.concat(&b))
        .expect("at least one byte"))
}

/// The value stored whole at `base` when the `size` bytes there are all of it, in order:
/// a number spilled and reloaded is then the number itself, not a concatenation of its
/// bytes, which the integer step can only read as sums of quotients and remainders.
/// Measured on seven token buckets, where clang spills five refilled tokens: five state
/// variables' queries went from bit-vectors (0.4–0.6 s each) to the integer step (60–100 ms).
fn spilled_whole(state: &State, base: u64, size: u32) -> Option<BV> {
    let Some(Slot::Data { whole, byte: 0 }) = state.stack.get(&base) else {
        return None;
    };
    let all = whole.get_size() == size * 8
        && (1..size).all(|i| {
            matches!(state.stack.get(&(base + u64::from(i))),
                Some(Slot::Data { whole: w, byte }) if *byte == i && w == whole)
        });
    all.then(|| whole.clone())
}

/// The low `size` bytes of a register's value: the value itself when it is that wide, so
/// that a stored register is the same term as the register (Z3 keeps `extract 63 0` of a
/// 64-bit term as a term of its own, which the integer step reads as a remainder).
fn low_bytes(value: &BV, size: u32) -> BV {
    if value.get_size() == size * 8 {
        value.clone()
    } else {
        value.extract(size * 8 - 1, 0)
    }
}

fn select_byte(array: &Array, index: &BV) -> BV {
    array.select(index).as_bv().expect("a byte")
}

pub(crate) fn store(
    state: &mut State,
    insn: &Insn,
    size: Size,
    source: Source,
) -> Result<(), Unknown> {
    let size = size.bytes();
    let (region, off) = pointer_at(state, insn)?;
    let value = match source {
        Source::Reg => match reg(state, insn.src)? {
            Val::Scalar(v) => v,
            pointer if size == 8 && matches!(region, Region::Stack) => {
                // A spill: the pointer's eight bytes, to be read back whole.
                let base = static_offset(state, &off, "a stack")?;
                for byte in 0..8u8 {
                    let slot = Slot::Ptr {
                        val: pointer.clone(),
                        byte,
                    };
                    state.stack.insert(base + u64::from(byte), slot);
                }
                return Ok(());
            }
            _ => {
                return Err(unknown(
                    state,
                    "storing a pointer anywhere but whole on the stack is not modelled",
                ));
            }
        },
        Source::Imm => BV::from_i64(i64::from(insn.imm), 64),
    };
    let value = low_bytes(&value, size);
    record_access(state, AccessKind::Store, &region, &off, size);
    write(state, &region, &off, &value)
}

/// The region and offset `dst + off` points at, for a store.
fn pointer_at(state: &State, insn: &Insn) -> Result<(Region, BV), Unknown> {
    let Val::Ptr { region, off } = reg(state, insn.dst)? else {
        return Err(unknown(
            state,
            "a store through something that is not a pointer",
        ));
    };
    Ok((region, off.bvadd(BV::from_i64(i64::from(insn.off), 64))))
}

fn record_access(state: &mut State, kind: AccessKind, region: &Region, off: &BV, size: u32) {
    let location = match region {
        Region::Section(section) => match off.simplify().as_u64() {
            Some(offset) => Location::Global {
                section: section.clone(),
                offset,
                size,
            },
            None => return,
        },
        Region::MapValue { map, .. } => Location::MapValue { map: map.clone() },
        _ => return,
    };
    state.accesses.push(Access {
        pc: state.pc,
        kind,
        location,
        lock_section: state.lock,
    });
}

pub(crate) fn atomic(state: &mut State, insn: &Insn, size: Size) -> Result<(), Unknown> {
    let size = size.bytes();
    let (region, off) = pointer_at(state, insn)?;
    let (region, off) = (&region, &off);
    let Val::Scalar(value) = reg(state, insn.src)? else {
        return Err(unknown(
            state,
            "storing a pointer to memory is not modelled",
        ));
    };
    let value = low_bytes(&value, size);
    record_access(state, AccessKind::Atomic, region, off, size);
    if size != 4 && size != 8 {
        return Err(unknown(
            state,
            "an atomic operation on a size other than 4 or 8",
        ));
    }
    let old = read(state, region, off, size)?;
    let Some((op, fetch)) = AtomicOp::decode(insn.imm) else {
        return Err(unknown(
            state,
            format!("atomic operation {:#04x} is not modelled", insn.imm),
        ));
    };
    let new = match op {
        AtomicOp::Add => old.bvadd(&value),
        AtomicOp::Or => old.bvor(&value),
        AtomicOp::And => old.bvand(&value),
        AtomicOp::Xor => old.bvxor(&value),
        AtomicOp::Xchg => value.clone(),
        AtomicOp::Cmpxchg => {
            // cmpxchg: compare with r0, write src if equal, r0 gets the old value.
            let expected = low_bytes(&scalar(state, 0)?, size);
            let new = old.eq(&expected).ite(&value, &old);
            write(state, region, off, &new)?;
            set(state, 0, Val::Scalar(extend(old, size, false)));
            return Ok(());
        }
    };
    write(state, region, off, &new)?;
    if fetch {
        set(state, insn.src, Val::Scalar(extend(old, size, false)));
    }
    Ok(())
}

pub(crate) fn write(
    state: &mut State,
    region: &Region,
    off: &BV,
    value: &BV,
) -> Result<(), Unknown> {
    let size = value.get_size() / 8;
    match region {
        Region::Stack => {
            let base = static_offset(state, off, "a stack")?;
            for byte in 0..size {
                let slot = Slot::Data {
                    whole: value.clone(),
                    byte,
                };
                state.stack.insert(base + u64::from(byte), slot);
            }
        }
        Region::Packet => {
            for i in 0..size {
                let at = off.bvadd(bv(u64::from(i), 64));
                state.packet = state.packet.store(&at, &value.extract(i * 8 + 7, i * 8));
            }
        }
        Region::Section(name) => {
            if name.starts_with(".rodata") {
                return Err(unknown(state, format!("a write to read-only `{name}`")));
            }
            let base = static_offset(state, off, "a global-data")?;
            let pc = state.pc;
            let section = state.sections.get_mut(name).ok_or_else(|| Unknown {
                pc,
                reason: format!("section `{name}` is not in the model"),
            })?;
            section.write(base, value.clone());
        }
        Region::MapValue { map, key } => {
            let base = static_offset(state, off, "a map-value")?;
            let entry = state.maps.get_mut(map).expect("a known map");
            let current = entry.values.select(key).as_bv().expect("a value");
            let total = entry.value_bits;
            let lo = (base * 8) as u32;
            let hi = lo + size * 8;
            if hi > total {
                return Err(Unknown {
                    pc: state.pc,
                    reason: "a write past the end of a map value".to_string(),
                });
            }
            let mut parts = Vec::new();
            if hi < total {
                parts.push(current.extract(total - 1, hi));
            }
            parts.push(value.clone());
            if lo > 0 {
                parts.push(current.extract(lo - 1, 0));
            }
            let updated = parts
                .into_iter()
                .reduce(|acc, p| acc.concat(&p))
                .expect("a part");
            entry.values = entry.values.store(key, &updated);
        }
        Region::Ctx => return Err(unknown(state, "a write to the XDP context")),
    }
    Ok(())
}
