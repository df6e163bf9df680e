//! BPF instructions as typed data, and the encoder back to bytes.
//!
//! `Opcode` is the opcode byte decoded into what it means; `Insn` an instruction with its
//! registers, offset and immediate (a wide `lddw` is one instruction of two slots). Every
//! byte string decodes, and encoding gives the same bytes back (`encode(decode(x)) == x`),
//! so tools that rewrite or patch an object (the replay, the optimizer) work through these
//! types and never spell an opcode byte.

/// The size of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }

    fn from_bits(code: u8) -> Size {
        match code & 0x18 {
            0x00 => Size::W,
            0x08 => Size::H,
            0x10 => Size::B,
            _ => Size::DW,
        }
    }
}

/// Where the second operand comes from: the immediate (`K`) or the source register (`X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Imm,
    Reg,
}

impl Source {
    fn bit(self) -> u8 {
        match self {
            Source::Imm => 0,
            Source::Reg => 0x08,
        }
    }

    fn from_bit(code: u8) -> Source {
        if code & 0x08 == 0 {
            Source::Imm
        } else {
            Source::Reg
        }
    }
}

/// Arithmetic operations (`BPF_ALU`, `BPF_ALU64`), in opcode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Or,
    And,
    Lsh,
    Rsh,
    Neg,
    Mod,
    Xor,
    Mov,
    Arsh,
    /// Byte swap (`BPF_END`): `to_le`/`to_be` by the source bit in 32-bit ALU, `bswap` in
    /// 64-bit ALU (cpu v4).
    End,
}

const ALU_OPS: [AluOp; 14] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Neg,
    AluOp::Mod,
    AluOp::Xor,
    AluOp::Mov,
    AluOp::Arsh,
    AluOp::End,
];

/// Jump operations (`BPF_JMP`, `BPF_JMP32`), in opcode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JmpOp {
    Ja,
    Jeq,
    Jgt,
    Jge,
    Jset,
    Jne,
    Jsgt,
    Jsge,
    Call,
    Exit,
    Jlt,
    Jle,
    Jslt,
    Jsle,
}

const JMP_OPS: [JmpOp; 14] = [
    JmpOp::Ja,
    JmpOp::Jeq,
    JmpOp::Jgt,
    JmpOp::Jge,
    JmpOp::Jset,
    JmpOp::Jne,
    JmpOp::Jsgt,
    JmpOp::Jsge,
    JmpOp::Call,
    JmpOp::Exit,
    JmpOp::Jlt,
    JmpOp::Jle,
    JmpOp::Jslt,
    JmpOp::Jsle,
];

/// An opcode byte, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// `wide`: 64-bit (`BPF_ALU64`) or 32-bit (`BPF_ALU`).
    Alu {
        wide: bool,
        op: AluOp,
        source: Source,
    },
    /// `wide`: `BPF_JMP` or `BPF_JMP32`.
    Jmp {
        wide: bool,
        op: JmpOp,
        source: Source,
    },
    /// `BPF_LDX | BPF_MEM` (or `BPF_MEMSX`, sign-extending, cpu v4).
    Load { size: Size, sign_extend: bool },
    /// `BPF_ST | BPF_MEM` (the immediate) or `BPF_STX | BPF_MEM` (the source register).
    Store { size: Size, source: Source },
    /// `BPF_STX | BPF_ATOMIC`; the operation is in the immediate.
    Atomic { size: Size },
    /// `BPF_LD | BPF_IMM | BPF_DW`: a 64-bit immediate over two slots.
    LoadImm64,
    /// The legacy packet loads `BPF_LD | BPF_ABS` and `BPF_LD | BPF_IND`.
    LegacyLoad { size: Size, indirect: bool },
    /// A byte no instruction has.
    Invalid(u8),
}

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_ABS: u8 = 0x20;
const MODE_IND: u8 = 0x40;
const MODE_MEM: u8 = 0x60;
const MODE_MEMSX: u8 = 0x80;
const MODE_ATOMIC: u8 = 0xc0;

impl Opcode {
    pub fn decode(code: u8) -> Opcode {
        let class = code & 0x07;
        let mode = code & 0xe0;
        let size = Size::from_bits(code);
        let op = usize::from(code >> 4);
        match class {
            CLASS_ALU | CLASS_ALU64 => match ALU_OPS.get(op) {
                Some(&op) => Opcode::Alu {
                    wide: class == CLASS_ALU64,
                    op,
                    source: Source::from_bit(code),
                },
                None => Opcode::Invalid(code),
            },
            CLASS_JMP | CLASS_JMP32 => match JMP_OPS.get(op) {
                Some(&op) => Opcode::Jmp {
                    wide: class == CLASS_JMP,
                    op,
                    source: Source::from_bit(code),
                },
                None => Opcode::Invalid(code),
            },
            CLASS_LDX if mode == MODE_MEM || mode == MODE_MEMSX => Opcode::Load {
                size,
                sign_extend: mode == MODE_MEMSX,
            },
            CLASS_ST if mode == MODE_MEM => Opcode::Store {
                size,
                source: Source::Imm,
            },
            CLASS_STX if mode == MODE_MEM => Opcode::Store {
                size,
                source: Source::Reg,
            },
            CLASS_STX if mode == MODE_ATOMIC => Opcode::Atomic { size },
            CLASS_LD if mode == MODE_IMM && size == Size::DW => Opcode::LoadImm64,
            CLASS_LD if mode == MODE_ABS || mode == MODE_IND => Opcode::LegacyLoad {
                size,
                indirect: mode == MODE_IND,
            },
            _ => Opcode::Invalid(code),
        }
    }

    pub fn encode(self) -> u8 {
        fn index<T: PartialEq>(op: T, ops: &[T]) -> u8 {
            ops.iter().position(|o| *o == op).expect("listed") as u8
        }
        match self {
            Opcode::Alu { wide, op, source } => {
                let class = if wide { CLASS_ALU64 } else { CLASS_ALU };
                (index(op, &ALU_OPS) << 4) | source.bit() | class
            }
            Opcode::Jmp { wide, op, source } => {
                let class = if wide { CLASS_JMP } else { CLASS_JMP32 };
                (index(op, &JMP_OPS) << 4) | source.bit() | class
            }
            Opcode::Load { size, sign_extend } => {
                let mode = if sign_extend { MODE_MEMSX } else { MODE_MEM };
                mode | size.bits() | CLASS_LDX
            }
            Opcode::Store { size, source } => {
                let class = match source {
                    Source::Imm => CLASS_ST,
                    Source::Reg => CLASS_STX,
                };
                MODE_MEM | size.bits() | class
            }
            Opcode::Atomic { size } => MODE_ATOMIC | size.bits() | CLASS_STX,
            Opcode::LoadImm64 => MODE_IMM | Size::DW.bits() | CLASS_LD,
            Opcode::LegacyLoad { size, indirect } => {
                let mode = if indirect { MODE_IND } else { MODE_ABS };
                mode | size.bits() | CLASS_LD
            }
            Opcode::Invalid(code) => code,
        }
    }
}

/// The operation of a `BPF_ATOMIC` instruction (its immediate without the fetch bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Or,
    And,
    Xor,
    Xchg,
    Cmpxchg,
}

/// The fetch flag of an atomic immediate: the old value is returned in the source register.
pub const ATOMIC_FETCH: i32 = 0x01;

impl AtomicOp {
    /// The operation an immediate names, and whether it fetches; `None` for another value.
    pub fn decode(imm: i32) -> Option<(AtomicOp, bool)> {
        let fetch = imm & ATOMIC_FETCH != 0;
        let op = match imm & !ATOMIC_FETCH {
            0x00 => AtomicOp::Add,
            0x40 => AtomicOp::Or,
            0x50 => AtomicOp::And,
            0xa0 => AtomicOp::Xor,
            0xe0 if fetch => AtomicOp::Xchg,
            0xf0 if fetch => AtomicOp::Cmpxchg,
            _ => return None,
        };
        Some((op, fetch))
    }

    pub fn encode(self, fetch: bool) -> i32 {
        let base = match self {
            AtomicOp::Add => 0x00,
            AtomicOp::Or => 0x40,
            AtomicOp::And => 0x50,
            AtomicOp::Xor => 0xa0,
            AtomicOp::Xchg => 0xe0,
            AtomicOp::Cmpxchg => 0xf0,
        };
        base | if fetch { ATOMIC_FETCH } else { 0 }
    }
}

/// `src_reg` of a `lddw`: what its immediate means.
pub const PSEUDO_MAP_FD: u8 = 1;
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of a `call`: a BPF-to-BPF call, a kfunc.
pub const PSEUDO_CALL: u8 = 1;
pub const PSEUDO_KFUNC_CALL: u8 = 2;

/// What a wide load refers to after relocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// The address of a map (`src_reg` 1, `BPF_PSEUDO_MAP_FD`).
    Map(String),
    /// An address inside a map's value: a global-data section plus an offset (`src_reg` 2).
    Value { map: String, offset: u32 },
}

/// One instruction; `lddw` is one instruction with `slots == 2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Insn {
    pub opcode: Opcode,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
    /// The high 32 bits of a wide immediate.
    pub imm_hi: i32,
    pub slots: u8,
    pub target: Option<Target>,
}

/// Bytes of one instruction slot.
pub const SLOT: usize = 8;

impl Insn {
    /// A one-slot instruction.
    pub fn new(opcode: Opcode, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            opcode,
            dst,
            src,
            off,
            imm,
            imm_hi: 0,
            slots: 1,
            target: None,
        }
    }

    /// `dst = imm` (64-bit move, sign-extended immediate).
    pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
        let opcode = Opcode::Alu {
            wide: true,
            op: AluOp::Mov,
            source: Source::Imm,
        };
        Insn::new(opcode, dst, 0, 0, imm)
    }

    /// `dst = (u32) imm` (32-bit move, zero-extended).
    pub fn mov32_imm(dst: u8, imm: u32) -> Insn {
        let opcode = Opcode::Alu {
            wide: false,
            op: AluOp::Mov,
            source: Source::Imm,
        };
        Insn::new(opcode, dst, 0, 0, imm as i32)
    }

    /// `ja +0`, which the verifier removes before the JIT sees it: how a rewrite deletes an
    /// instruction without moving any other (jumps, relocations and line info stay valid).
    pub fn nop() -> Insn {
        let opcode = Opcode::Jmp {
            wide: true,
            op: JmpOp::Ja,
            source: Source::Imm,
        };
        Insn::new(opcode, 0, 0, 0, 0)
    }

    pub fn is_lddw(&self) -> bool {
        self.opcode == Opcode::LoadImm64
    }

    /// `ja +0`: a jump to the next instruction, which clang emits for alignment; not counted.
    pub fn is_nop_jump(&self) -> bool {
        matches!(
            self.opcode,
            Opcode::Jmp {
                wide: true,
                op: JmpOp::Ja,
                ..
            }
        ) && self.off == 0
    }

    /// The helper this instruction calls, if it is a helper call.
    pub fn helper(&self) -> Option<crate::object_model::Helper> {
        match self.opcode {
            Opcode::Jmp {
                op: JmpOp::Call, ..
            } if self.src == 0 => Some(crate::object_model::Helper(self.imm)),
            _ => None,
        }
    }

    /// The instruction's bytes (16 for a wide load).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(SLOT * usize::from(self.slots));
        bytes.push(self.opcode.encode());
        bytes.push((self.src << 4) | (self.dst & 0x0f));
        bytes.extend_from_slice(&self.off.to_le_bytes());
        bytes.extend_from_slice(&self.imm.to_le_bytes());
        if self.slots == 2 {
            bytes.extend_from_slice(&[0; 4]);
            bytes.extend_from_slice(&self.imm_hi.to_le_bytes());
        }
        bytes
    }
}

/// Decodes a program's bytes (a whole number of slots; a trailing partial slot is ignored).
/// A wide load takes its second slot; a second slot that is not all zeros but for its
/// immediate, or a wide load in the last slot, makes the two slots separate instructions
/// so that the bytes still come back unchanged.
pub fn decode(bytes: &[u8]) -> Vec<Insn> {
    let slots: Vec<&[u8]> = bytes.chunks_exact(SLOT).collect();
    let mut insns = Vec::with_capacity(slots.len());
    let mut index = 0;
    while index < slots.len() {
        let slot = slots[index];
        let mut insn = Insn::new(
            Opcode::decode(slot[0]),
            slot[1] & 0x0f,
            slot[1] >> 4,
            i16::from_le_bytes([slot[2], slot[3]]),
            i32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]),
        );
        if insn.is_lddw()
            && let Some(next) = slots.get(index + 1)
            && next[..4] == [0, 0, 0, 0]
        {
            insn.slots = 2;
            insn.imm_hi = i32::from_le_bytes([next[4], next[5], next[6], next[7]]);
        }
        index += usize::from(insn.slots);
        insns.push(insn);
    }
    insns
}

/// The bytes of a sequence of instructions.
pub fn encode(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(Insn::encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_byte_round_trips() {
        for code in 0..=u8::MAX {
            assert_eq!(Opcode::decode(code).encode(), code, "{code:#04x}");
        }
    }

    #[test]
    fn opcodes_mean_what_the_instruction_set_says() {
        assert_eq!(
            Opcode::decode(0x07),
            Opcode::Alu {
                wide: true,
                op: AluOp::Add,
                source: Source::Imm
            }
        );
        assert_eq!(
            Opcode::decode(0xbc),
            Opcode::Alu {
                wide: false,
                op: AluOp::Mov,
                source: Source::Reg
            }
        );
        assert_eq!(
            Opcode::decode(0x85),
            Opcode::Jmp {
                wide: true,
                op: JmpOp::Call,
                source: Source::Imm
            }
        );
        assert_eq!(
            Opcode::decode(0x95),
            Opcode::Jmp {
                wide: true,
                op: JmpOp::Exit,
                source: Source::Imm
            }
        );
        assert_eq!(
            Opcode::decode(0x61),
            Opcode::Load {
                size: Size::W,
                sign_extend: false
            }
        );
        assert_eq!(
            Opcode::decode(0x7b),
            Opcode::Store {
                size: Size::DW,
                source: Source::Reg
            }
        );
        assert_eq!(
            Opcode::decode(0x62),
            Opcode::Store {
                size: Size::W,
                source: Source::Imm
            }
        );
        assert_eq!(Opcode::decode(0xdb), Opcode::Atomic { size: Size::DW });
        assert_eq!(Opcode::decode(0x18), Opcode::LoadImm64);
        assert_eq!(Opcode::decode(0xb4), Insn::mov32_imm(0, 0).opcode);
        assert_eq!(Opcode::decode(0xb7), Insn::mov64_imm(0, 0).opcode);
        assert!(matches!(Opcode::decode(0xe7), Opcode::Invalid(0xe7)));
    }

    #[test]
    fn atomic_immediates_round_trip() {
        for imm in [0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1] {
            let (op, fetch) = AtomicOp::decode(imm).unwrap();
            assert_eq!(op.encode(fetch), imm);
        }
        assert_eq!(AtomicOp::decode(0xe0), None);
    }

    #[test]
    fn arbitrary_bytes_round_trip() {
        // A wide load, a second slot with stray bits, a wide load in the last slot.
        let mut bytes = vec![0x18, 0x12, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
        bytes.extend_from_slice(&[0x18, 0x01, 0, 0, 5, 0, 0, 0, 0x07, 0, 0, 0, 9, 0, 0, 0]);
        bytes.extend_from_slice(&[0x18, 0, 0, 0, 0, 0, 0, 0]);
        let insns = decode(&bytes);
        assert_eq!(insns.len(), 4);
        assert_eq!(insns[0].slots, 2);
        assert_eq!(insns[0].imm_hi, 2);
        assert_eq!(encode(&insns), bytes);
    }
}
