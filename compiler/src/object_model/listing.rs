//! Instructions as text, in the notation of the kernel's verifier log and `bpftool prog dump
//! xlated` (`r1 = *(u32 *)(r2 +12)`), for people and for the LLM optimizer's prompt.

use std::fmt::Write as _;

use super::Insn;
use super::insn::{AluOp, AtomicOp, JmpOp, Opcode, Size, Source, Target};

fn size(size: Size) -> &'static str {
    match size {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    }
}

fn alu_symbol(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov => "=",
        AluOp::Arsh => "s>>=",
        AluOp::Neg | AluOp::End => "?",
    }
}

fn jmp_symbol(op: JmpOp) -> &'static str {
    match op {
        JmpOp::Jeq => "==",
        JmpOp::Jgt => ">",
        JmpOp::Jge => ">=",
        JmpOp::Jset => "&",
        JmpOp::Jne => "!=",
        JmpOp::Jsgt => "s>",
        JmpOp::Jsge => "s>=",
        JmpOp::Jlt => "<",
        JmpOp::Jle => "<=",
        JmpOp::Jslt => "s<",
        JmpOp::Jsle => "s<=",
        JmpOp::Ja | JmpOp::Call | JmpOp::Exit => "?",
    }
}

/// One instruction.
pub fn text(insn: &Insn) -> String {
    let (d, s, off, imm) = (insn.dst, insn.src, insn.off, insn.imm);
    match insn.opcode {
        Opcode::Alu { wide, op, source } => {
            let r = if wide { "r" } else { "w" };
            let operand = match source {
                Source::Imm => imm.to_string(),
                Source::Reg => format!("{r}{s}"),
            };
            match op {
                AluOp::Neg => format!("{r}{d} = -{r}{d}"),
                AluOp::End => {
                    let order = match (wide, source) {
                        (true, _) => "bswap",
                        (false, Source::Reg) => "be",
                        (false, Source::Imm) => "le",
                    };
                    format!("r{d} = {order}{imm} r{d}")
                }
                _ => format!("{r}{d} {} {operand}", alu_symbol(op)),
            }
        }
        Opcode::Jmp { wide, op, source } => {
            let r = if wide { "r" } else { "w" };
            match op {
                JmpOp::Ja => format!("goto pc{off:+}"),
                JmpOp::Exit => "exit".to_string(),
                JmpOp::Call => match insn.helper() {
                    Some(helper) => match helper.name() {
                        Some(name) => format!("call bpf_{name}#{}", helper.0),
                        None => format!("call #{}", helper.0),
                    },
                    None => format!("call pc{imm:+}"),
                },
                _ => {
                    let operand = match source {
                        Source::Imm => format!("{imm:#x}"),
                        Source::Reg => format!("{r}{s}"),
                    };
                    format!("if {r}{d} {} {operand} goto pc{off:+}", jmp_symbol(op))
                }
            }
        }
        Opcode::Load { size: sz, .. } => format!("r{d} = *({} *)(r{s} {off:+})", size(sz)),
        Opcode::Store { size: sz, source } => match source {
            Source::Imm => format!("*({} *)(r{d} {off:+}) = {imm}", size(sz)),
            Source::Reg => format!("*({} *)(r{d} {off:+}) = r{s}", size(sz)),
        },
        Opcode::Atomic { size: sz } => match AtomicOp::decode(imm) {
            Some((op, fetch)) => {
                let name = match op {
                    AtomicOp::Add => "add",
                    AtomicOp::Or => "or",
                    AtomicOp::And => "and",
                    AtomicOp::Xor => "xor",
                    AtomicOp::Xchg => "xchg",
                    AtomicOp::Cmpxchg => "cmpxchg",
                };
                let fetch = if fetch { " (fetch)" } else { "" };
                format!("lock {name}{fetch} *({} *)(r{d} {off:+}), r{s}", size(sz))
            }
            None => format!("atomic {imm:#x} *({} *)(r{d} {off:+}), r{s}", size(sz)),
        },
        Opcode::LoadImm64 => match &insn.target {
            Some(Target::Map(map)) => format!("r{d} = map[{map}]"),
            Some(Target::Value { map, offset }) => format!("r{d} = map[{map}][0]+{offset}"),
            None => {
                let value = (u64::from(insn.imm_hi as u32) << 32) | u64::from(insn.imm as u32);
                format!("r{d} = {value:#x} ll")
            }
        },
        Opcode::LegacyLoad { size: sz, indirect } => {
            if indirect {
                format!("r0 = *({} *)skb[r{s} {imm:+}]", size(sz))
            } else {
                format!("r0 = *({} *)skb[{imm}]", size(sz))
            }
        }
        Opcode::Invalid(code) => format!("(invalid opcode {code:#04x})"),
    }
}

/// A numbered listing, one instruction per line, numbered by slot as the kernel numbers them.
pub fn listing(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut slot = 0usize;
    for insn in insns {
        let _ = writeln!(out, "{slot:4}: {}", text(insn));
        slot += usize::from(insn.slots);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_read_as_the_verifier_writes_them() {
        let load = Insn::new(
            Opcode::Load {
                size: Size::W,
                sign_extend: false,
            },
            1,
            2,
            12,
            0,
        );
        assert_eq!(text(&load), "r1 = *(u32 *)(r2 +12)");
        assert_eq!(text(&Insn::mov32_imm(0, 2)), "w0 = 2");
        let branch = Insn::new(
            Opcode::Jmp {
                wide: false,
                op: JmpOp::Jgt,
                source: Source::Imm,
            },
            3,
            0,
            7,
            0xaff,
        );
        assert_eq!(text(&branch), "if w3 > 0xaff goto pc+7");
        assert_eq!(text(&Insn::nop()), "goto pc+0");
        assert_eq!(
            listing(&[Insn::mov64_imm(0, 1), Insn::nop()]),
            "   0: r0 = 1\n   1: goto pc+0\n"
        );
    }
}
