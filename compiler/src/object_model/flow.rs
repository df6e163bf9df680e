//! What each instruction reads and writes, where control goes next, and which registers are
//! live: the facts the optimizer's rewrite rules ask before they propose anything, and the
//! checker's symbolic executor before it merges states.

use super::Insn;
use super::insn::{AluOp, AtomicOp, JmpOp, Opcode, Source};

/// A set of registers r0–r10, one bit each.
pub type Regs = u16;

pub fn reg(r: u8) -> Regs {
    1 << r
}

/// r0–r5: what a helper call overwrites.
const CALLER_SAVED: Regs = 0b11_1111;

/// Where control goes after an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Fall,
    /// `ja`: only to the target.
    Jump(usize),
    /// A conditional jump: the target or the next instruction.
    Branch(usize),
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    pub uses: Regs,
    pub defs: Regs,
    /// Nothing happens but the registers in `defs` (no memory, no helper, no control).
    pub pure: bool,
    pub next: Next,
}

/// The program's control flow and liveness, by instruction index (not slot).
#[derive(Debug)]
pub struct Flow {
    pub effects: Vec<Effect>,
    /// Instructions some jump lands on.
    pub targets: Vec<bool>,
    pub live_out: Vec<Regs>,
}

/// Why a program is not rewritten at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    /// Instruction `at` is one the rules do not model (a BPF-to-BPF call, a legacy packet
    /// load, a 32-bit `gotol`, an undefined opcode, a jump outside the program).
    Instruction { at: usize },
}

impl Flow {
    pub fn of(insns: &[Insn]) -> Result<Flow, Unsupported> {
        let mut slot_starts = Vec::with_capacity(insns.len());
        let mut slot = 0usize;
        for insn in insns {
            slot_starts.push(slot);
            slot += usize::from(insn.slots);
        }
        let index_of_slot = |target_slot: i64| {
            usize::try_from(target_slot)
                .ok()
                .and_then(|s| slot_starts.binary_search(&s).ok())
        };
        let mut effects = Vec::with_capacity(insns.len());
        for (at, insn) in insns.iter().enumerate() {
            let target = || {
                index_of_slot(slot_starts[at] as i64 + 1 + i64::from(insn.off))
                    .ok_or(Unsupported::Instruction { at })
            };
            let effect = effect(insn, target).ok_or(Unsupported::Instruction { at })??;
            effects.push(effect);
        }
        let mut targets = vec![false; insns.len()];
        for effect in &effects {
            if let Next::Jump(to) | Next::Branch(to) = effect.next {
                targets[to] = true;
            }
        }
        let live_out = liveness(&effects);
        Ok(Flow {
            effects,
            targets,
            live_out,
        })
    }

    pub fn live_in(&self, at: usize) -> Regs {
        let effect = &self.effects[at];
        effect.uses | (self.live_out[at] & !effect.defs)
    }
}

/// `None` for an instruction the rules do not model; `Some(Err)` for a jump that leaves.
fn effect(
    insn: &Insn,
    target: impl Fn() -> Result<usize, Unsupported>,
) -> Option<Result<Effect, Unsupported>> {
    let dst = reg(insn.dst);
    let src = reg(insn.src);
    let plain = |uses, defs, pure| {
        Some(Ok(Effect {
            uses,
            defs,
            pure,
            next: Next::Fall,
        }))
    };
    match insn.opcode {
        Opcode::Alu { op, source, .. } => {
            let from = if source == Source::Reg { src } else { 0 };
            match op {
                AluOp::Mov => plain(from, dst, true),
                AluOp::Neg | AluOp::End => plain(dst, dst, true),
                _ => plain(dst | from, dst, true),
            }
        }
        Opcode::Load { .. } => plain(src, dst, true),
        Opcode::LoadImm64 => plain(0, dst, true),
        Opcode::Store { source, .. } => {
            let from = if source == Source::Reg { src } else { 0 };
            plain(dst | from, 0, false)
        }
        Opcode::Atomic { .. } => {
            let (op, fetch) = AtomicOp::decode(insn.imm)?;
            let (uses, defs) = match op {
                AtomicOp::Cmpxchg => (dst | src | reg(0), reg(0)),
                _ if fetch => (dst | src, src),
                _ => (dst | src, 0),
            };
            plain(uses, defs, false)
        }
        Opcode::Jmp { wide, op, source } => match op {
            JmpOp::Call => {
                // Only helper calls: a BPF-to-BPF call or a kfunc has other rules.
                let helper = insn.helper()?;
                let arguments = helper.arguments().unwrap_or(5);
                let uses = ((1u16 << arguments) - 1) << 1;
                plain(uses, CALLER_SAVED, false)
            }
            JmpOp::Exit => Some(Ok(Effect {
                uses: reg(0),
                defs: 0,
                pure: false,
                next: Next::Exit,
            })),
            // `gotol` (a 32-bit `ja` with its offset in the immediate) is not modelled.
            JmpOp::Ja if !wide => None,
            JmpOp::Ja => Some(target().map(|to| Effect {
                uses: 0,
                defs: 0,
                pure: false,
                next: Next::Jump(to),
            })),
            _ => {
                let from = if source == Source::Reg { src } else { 0 };
                Some(target().map(|to| Effect {
                    uses: dst | from,
                    defs: 0,
                    pure: false,
                    next: Next::Branch(to),
                }))
            }
        },
        Opcode::LegacyLoad { .. } | Opcode::Invalid(_) => None,
    }
}

fn liveness(effects: &[Effect]) -> Vec<Regs> {
    let mut live_in = vec![0 as Regs; effects.len()];
    let mut live_out = vec![0 as Regs; effects.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for at in (0..effects.len()).rev() {
            let effect = &effects[at];
            let next_in = |i: usize| live_in.get(i).copied().unwrap_or(0);
            let out = match effect.next {
                Next::Fall => next_in(at + 1),
                Next::Jump(to) => next_in(to),
                Next::Branch(to) => next_in(to) | next_in(at + 1),
                Next::Exit => 0,
            };
            let inn = effect.uses | (out & !effect.defs);
            if out != live_out[at] || inn != live_in[at] {
                live_out[at] = out;
                live_in[at] = inn;
                changed = true;
            }
        }
    }
    live_out
}
