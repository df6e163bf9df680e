//! Bytecode rewrites on a compiled object (docs/optimizer.md), peephole rules in the manner of
//! K2 and Merlin, through the typed instruction encoder. A rule only proposes: the rewritten
//! object goes through the gate like any other candidate and is kept only proven, so a rule
//! that is wrong somewhere costs a rejected candidate, never a wrong program. A deleted
//! instruction becomes `ja +0`, which the verifier removes before the JIT: no other
//! instruction moves, so jumps, relocations and line info stay as clang wrote them.

use simplebpf_compiler::object_model::Insn;
use simplebpf_compiler::object_model::insn::{AluOp, AtomicOp, JmpOp, Opcode, Size, Source};

pub use simplebpf_compiler::object_model::flow::Unsupported;
use simplebpf_compiler::object_model::flow::{Flow, Next, reg};

/// A rewrite rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `rD = imm` while another register holds the same value: rD's readers read that
    /// register, and the move goes.
    ConstantReuse,
    /// `rD = rS`: rD's readers read rS, and the move goes.
    RedundantMove,
    /// `rD = imm; *(rX + off) = rD` with rD read nowhere else: `*(rX + off) = imm`.
    StoreImmediate,
    /// An instruction whose only effect is a register nobody reads afterwards.
    DeadDefinition,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::ConstantReuse,
        Rule::RedundantMove,
        Rule::StoreImmediate,
        Rule::DeadDefinition,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::ConstantReuse => "constant-reuse",
            Rule::RedundantMove => "redundant-move",
            Rule::StoreImmediate => "store-immediate",
            Rule::DeadDefinition => "dead-definition",
        }
    }
}

/// One application of a rule: at which instruction it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub rule: Rule,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// As many instructions as the input, slot for slot.
    pub insns: Vec<Insn>,
    pub applied: Vec<Applied>,
}

impl Rewritten {
    /// How a report names what was done: `constant-reuse×1 redundant-move×2`.
    pub fn describe(&self) -> String {
        Rule::ALL
            .iter()
            .filter_map(|rule| {
                let n = self.applied.iter().filter(|a| a.rule == *rule).count();
                (n > 0).then(|| format!("{}×{n}", rule.name()))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The frame pointer: never renamed, never renamed to.
const FP: u8 = 10;

/// Applies `rules` until none applies anywhere (each application deletes an instruction, so
/// this ends), trying them in the order given at the earliest instruction first.
pub fn rewrite(insns: &[Insn], rules: &[Rule]) -> Result<Rewritten, Unsupported> {
    let mut current = insns.to_vec();
    let mut applied = Vec::new();
    'again: loop {
        let flow = Flow::of(&current)?;
        for &rule in rules {
            for at in 0..current.len() {
                if let Some(next) = apply(rule, &current, &flow, at) {
                    current = next;
                    applied.push(Applied { rule, at });
                    continue 'again;
                }
            }
        }
        return Ok(Rewritten {
            insns: current,
            applied,
        });
    }
}

fn apply(rule: Rule, insns: &[Insn], flow: &Flow, at: usize) -> Option<Vec<Insn>> {
    let insn = &insns[at];
    match rule {
        Rule::RedundantMove => {
            let (dst, src) = plain_move(insn)?;
            rename_and_delete(insns, flow, at, dst, src)
        }
        Rule::ConstantReuse => {
            let value = constant(insn)?;
            let holder = (0..FP).find(|&r| {
                r != insn.dst && known_constants(insns, flow, at)[usize::from(r)] == Some(value)
            })?;
            rename_and_delete(insns, flow, at, insn.dst, holder)
        }
        Rule::StoreImmediate => store_immediate(insns, flow, at),
        Rule::DeadDefinition => {
            let effect = &flow.effects[at];
            let dead = effect.pure
                && !insn.is_lddw()
                && !insn.is_nop_jump()
                && effect.defs != 0
                && effect.defs & flow.live_out[at] == 0;
            dead.then(|| {
                let mut out = insns.to_vec();
                out[at] = Insn::nop();
                out
            })
        }
    }
}

/// `rD = rS` (64-bit, not sign-extending).
fn plain_move(insn: &Insn) -> Option<(u8, u8)> {
    let is_move = insn.opcode
        == Opcode::Alu {
            wide: true,
            op: AluOp::Mov,
            source: Source::Reg,
        };
    (is_move && insn.off == 0 && insn.dst != insn.src && insn.dst != FP && insn.src != FP)
        .then_some((insn.dst, insn.src))
}

/// The 64-bit value a move of an immediate leaves in its register.
fn constant(insn: &Insn) -> Option<u64> {
    match insn.opcode {
        Opcode::Alu {
            wide,
            op: AluOp::Mov,
            source: Source::Imm,
        } if insn.dst != FP => Some(if wide {
            i64::from(insn.imm) as u64
        } else {
            u64::from(insn.imm as u32)
        }),
        _ => None,
    }
}

/// The registers known to hold a constant just before `at`, from the start of its straight
/// run of code (a jump target or the instruction after a jump starts a new one).
fn known_constants(insns: &[Insn], flow: &Flow, at: usize) -> [Option<u64>; 11] {
    let mut start = at;
    while start > 0 && !flow.targets[start] && flow.effects[start - 1].next == Next::Fall {
        start -= 1;
    }
    let mut known = [None; 11];
    for (i, insn) in insns.iter().enumerate().take(at).skip(start) {
        let value = constant(insn).or_else(|| {
            let (_, src) = plain_move(insn)?;
            known[usize::from(src)]
        });
        for r in 0..=FP {
            if flow.effects[i].defs & reg(r) != 0 {
                known[usize::from(r)] = None;
            }
        }
        if let Some(value) = value {
            known[usize::from(insn.dst)] = Some(value);
        }
    }
    known
}

/// Deletes `rD = …` at `at` and makes every later reader of that value read `src` instead,
/// when that is a renaming of register fields only: every reader is in the same straight
/// run, reads the register without writing it, and `src` keeps its value until the last.
fn rename_and_delete(
    insns: &[Insn],
    flow: &Flow,
    at: usize,
    dst: u8,
    src: u8,
) -> Option<Vec<Insn>> {
    if dst == FP || src == FP || dst == src {
        return None;
    }
    let mut out = insns.to_vec();
    out[at] = Insn::nop();
    let d = reg(dst);
    for j in at + 1..insns.len() {
        if flow.live_in(j) & d == 0 {
            return Some(out);
        }
        if flow.targets[j] {
            return None;
        }
        let effect = &flow.effects[j];
        if effect.uses & d != 0 {
            out[j] = renamed(&insns[j], dst, src)?;
        }
        let dead_after = flow.live_out[j] & d == 0 || effect.defs & d != 0;
        if dead_after {
            return Some(out);
        }
        if effect.defs & reg(src) != 0 || effect.next != Next::Fall {
            return None;
        }
    }
    None
}

/// `insn` with its reads of `from` made reads of `to`, if every read of `from` is a field
/// that is only read.
fn renamed(insn: &Insn, from: u8, to: u8) -> Option<Insn> {
    let mut out = insn.clone();
    let ok = match insn.opcode {
        Opcode::Alu {
            op: AluOp::Neg | AluOp::End,
            ..
        } => false,
        Opcode::Alu {
            op: AluOp::Mov,
            source: Source::Reg,
            ..
        }
        | Opcode::Load { .. } => {
            if insn.src == from {
                out.src = to;
            }
            true
        }
        // Any other operation also reads (and writes) its destination: only the source is
        // renamed.
        Opcode::Alu {
            source: Source::Reg,
            ..
        } if insn.dst != from => {
            out.src = to;
            true
        }
        Opcode::Alu { .. } => false,
        Opcode::Store { .. } | Opcode::Atomic { .. } => {
            if let Opcode::Atomic { .. } = insn.opcode {
                let (op, fetch) = AtomicOp::decode(insn.imm)?;
                let writes_src = fetch || op == AtomicOp::Cmpxchg;
                if (writes_src && insn.src == from) || (op == AtomicOp::Cmpxchg && from == 0) {
                    return None;
                }
            }
            if insn.dst == from {
                out.dst = to;
            }
            if insn.src == from {
                out.src = to;
            }
            true
        }
        Opcode::Jmp {
            op: JmpOp::Call | JmpOp::Exit | JmpOp::Ja,
            ..
        } => false,
        Opcode::Jmp { source, .. } => {
            if insn.dst == from {
                out.dst = to;
            }
            if source == Source::Reg && insn.src == from {
                out.src = to;
            }
            true
        }
        Opcode::LoadImm64 | Opcode::LegacyLoad { .. } | Opcode::Invalid(_) => false,
    };
    ok.then_some(out)
}

/// `rD = imm` at `at` whose only reader is a register store in the same straight run, after
/// which rD is dead: the store takes the immediate and the move goes.
fn store_immediate(insns: &[Insn], flow: &Flow, at: usize) -> Option<Vec<Insn>> {
    let insn = &insns[at];
    let value = constant(insn)?;
    let d = reg(insn.dst);
    for j in at + 1..insns.len() {
        if flow.targets[j] {
            return None;
        }
        let effect = &flow.effects[j];
        if effect.uses & d == 0 {
            if effect.defs & d != 0 || effect.next != Next::Fall {
                return None;
            }
            continue;
        }
        let store = &insns[j];
        let Opcode::Store {
            size,
            source: Source::Reg,
        } = store.opcode
        else {
            return None;
        };
        if store.src != insn.dst || store.dst == insn.dst || flow.live_out[j] & d != 0 {
            return None;
        }
        // `ST` sign-extends its 32-bit immediate to the store's width: the same bytes as the
        // register unless a zero-extended negative 32-bit move is stored as 64 bits.
        let imm = insn.imm;
        if size == Size::DW && i64::from(imm) as u64 != value {
            return None;
        }
        let mut out = insns.to_vec();
        out[at] = Insn::nop();
        out[j] = Insn::new(
            Opcode::Store {
                size,
                source: Source::Imm,
            },
            store.dst,
            0,
            store.off,
            imm,
        );
        return Some(out);
    }
    None
}

#[cfg(test)]
mod tests;
