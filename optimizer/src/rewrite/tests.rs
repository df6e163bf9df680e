//! Each rule on a small program written out instruction by instruction, and the places where
//! it must not apply.

use super::*;
use simplebpf_compiler::object_model::Helper;

fn alu(wide: bool, op: AluOp, source: Source, dst: u8, src: u8, imm: i32) -> Insn {
    Insn::new(Opcode::Alu { wide, op, source }, dst, src, 0, imm)
}

fn mov(dst: u8, src: u8) -> Insn {
    alu(true, AluOp::Mov, Source::Reg, dst, src, 0)
}

fn add_imm(dst: u8, imm: i32) -> Insn {
    alu(true, AluOp::Add, Source::Imm, dst, 0, imm)
}

fn call(helper: Helper) -> Insn {
    let opcode = Opcode::Jmp {
        wide: true,
        op: JmpOp::Call,
        source: Source::Imm,
    };
    Insn::new(opcode, 0, 0, 0, helper.0)
}

fn exit() -> Insn {
    let opcode = Opcode::Jmp {
        wide: true,
        op: JmpOp::Exit,
        source: Source::Imm,
    };
    Insn::new(opcode, 0, 0, 0, 0)
}

fn jlt_imm(dst: u8, imm: i32, off: i16) -> Insn {
    let opcode = Opcode::Jmp {
        wide: false,
        op: JmpOp::Jlt,
        source: Source::Imm,
    };
    Insn::new(opcode, dst, 0, off, imm)
}

/// `lock *(u64 *)(base + off) += src`
fn atomic_add(base: u8, src: u8, off: i16) -> Insn {
    Insn::new(
        Opcode::Atomic { size: Size::DW },
        base,
        src,
        off,
        AtomicOp::Add.encode(false),
    )
}

fn store(size: Size, base: u8, off: i16, src: u8) -> Insn {
    let opcode = Opcode::Store {
        size,
        source: Source::Reg,
    };
    Insn::new(opcode, base, src, off, 0)
}

fn load(dst: u8, base: u8, off: i16) -> Insn {
    let opcode = Opcode::Load {
        size: Size::W,
        sign_extend: false,
    };
    Insn::new(opcode, dst, base, off, 0)
}

fn rules(rules: &[Rule], insns: &[Insn]) -> Rewritten {
    rewrite(insns, rules).expect("a modelled program")
}

#[test]
fn a_constant_another_register_holds_is_read_from_it() {
    // r6 = 1; r2 = 1; lock *(r1 + 0) += r2; call prandom; r0 = r6; exit
    let program = [
        Insn::mov64_imm(6, 1),
        Insn::mov64_imm(2, 1),
        atomic_add(1, 2, 0),
        call(Helper::GET_PRANDOM_U32),
        mov(0, 6),
        exit(),
    ];
    let out = rules(&[Rule::ConstantReuse], &program);
    assert_eq!(out.insns[1], Insn::nop());
    assert_eq!(out.insns[2], atomic_add(1, 6, 0));
    assert_eq!(out.describe(), "constant-reuse×1");
}

#[test]
fn a_constant_is_not_reused_from_a_register_overwritten_before_the_read() {
    // r6 = 1; r2 = 1; r6 += 1; lock *(r1 + 0) += r2; r0 = r6; exit
    let program = [
        Insn::mov64_imm(6, 1),
        Insn::mov64_imm(2, 1),
        add_imm(6, 1),
        atomic_add(1, 2, 0),
        mov(0, 6),
        exit(),
    ];
    assert!(rules(&[Rule::ConstantReuse], &program).applied.is_empty());
}

#[test]
fn a_32_bit_constant_is_not_a_negative_64_bit_one() {
    // w6 = -1 holds 0xffff_ffff; r2 = -1 holds all ones: different values.
    let program = [
        Insn::mov32_imm(6, u32::MAX),
        Insn::mov64_imm(2, -1),
        atomic_add(1, 2, 0),
        mov(0, 6),
        exit(),
    ];
    assert!(rules(&[Rule::ConstantReuse], &program).applied.is_empty());
}

#[test]
fn a_move_whose_readers_can_read_its_source_goes() {
    // r2 = r6; lock *(r1 + 0) += r2; call prandom (overwrites r2); r0 = r6; exit
    let program = [
        mov(2, 6),
        atomic_add(1, 2, 0),
        call(Helper::GET_PRANDOM_U32),
        mov(0, 6),
        exit(),
    ];
    let out = rules(&[Rule::RedundantMove], &program);
    assert_eq!(out.insns[0], Insn::nop());
    assert_eq!(out.insns[1], atomic_add(1, 6, 0));
    assert_eq!(
        out.applied,
        vec![Applied {
            rule: Rule::RedundantMove,
            at: 0
        }]
    );
}

#[test]
fn a_move_into_a_helper_argument_stays() {
    // r1 = r6; call spin_lock (reads r1): the argument register is fixed.
    let program = [
        mov(1, 6),
        call(Helper::SPIN_LOCK),
        Insn::mov64_imm(0, 2),
        exit(),
    ];
    assert!(rules(&[Rule::RedundantMove], &program).applied.is_empty());
}

#[test]
fn a_move_whose_copy_is_modified_stays() {
    // r1 = r3; r1 += 42; r0 = *(u32 *)(r1 + 0); exit: r1 is not a copy of r3 any more.
    let program = [mov(1, 3), add_imm(1, 42), load(0, 1, 0), exit()];
    assert!(rules(&[Rule::RedundantMove], &program).applied.is_empty());
}

#[test]
fn a_move_whose_copy_is_live_at_a_join_stays() {
    // 0: r2 = r6   1: if w0 < 5 goto 3   2: r2 = 7   3: r0 = r2   4: exit
    let program = [
        mov(2, 6),
        jlt_imm(0, 5, 1),
        Insn::mov64_imm(2, 7),
        mov(0, 2),
        exit(),
    ];
    assert!(rules(&[Rule::RedundantMove], &program).applied.is_empty());
}

#[test]
fn a_stored_constant_becomes_the_stores_immediate() {
    // w1 = 0; *(u32 *)(r10 - 4) = r1; r0 = 2; exit
    let program = [
        Insn::mov32_imm(1, 0),
        store(Size::W, 10, -4, 1),
        Insn::mov64_imm(0, 2),
        exit(),
    ];
    let out = rules(&[Rule::StoreImmediate], &program);
    assert_eq!(out.insns[0], Insn::nop());
    let st = Opcode::Store {
        size: Size::W,
        source: Source::Imm,
    };
    assert_eq!(out.insns[1], Insn::new(st, 10, 0, -4, 0));
}

#[test]
fn a_zero_extended_negative_is_not_stored_as_a_sign_extended_immediate() {
    // w1 = -1 (0x0000_0000_ffff_ffff); *(u64 *)(r10 - 8) = r1: ST would store all ones.
    let program = [
        Insn::mov32_imm(1, u32::MAX),
        store(Size::DW, 10, -8, 1),
        Insn::mov64_imm(0, 2),
        exit(),
    ];
    assert!(rules(&[Rule::StoreImmediate], &program).applied.is_empty());
}

#[test]
fn a_stored_constant_read_again_stays() {
    let program = [
        Insn::mov64_imm(1, 5),
        store(Size::DW, 10, -8, 1),
        mov(0, 1),
        exit(),
    ];
    assert!(rules(&[Rule::StoreImmediate], &program).applied.is_empty());
}

#[test]
fn a_definition_nobody_reads_goes_and_one_somebody_reads_stays() {
    // r3 = 9 (never read); r0 = 2; exit
    let program = [Insn::mov64_imm(3, 9), Insn::mov64_imm(0, 2), exit()];
    let out = rules(&[Rule::DeadDefinition], &program);
    assert_eq!(out.insns[0], Insn::nop());
    assert_eq!(out.insns[1], program[1]);
    // r0 is read by exit.
    let live = [Insn::mov64_imm(0, 2), exit()];
    assert!(rules(&[Rule::DeadDefinition], &live).applied.is_empty());
}

#[test]
fn rules_reach_a_fixpoint_and_keep_every_slot() {
    // The constant reuse leaves nothing for the move rule; the count of slots never changes.
    let program = [
        Insn::mov64_imm(6, 1),
        Insn::mov64_imm(2, 1),
        mov(3, 2),
        atomic_add(1, 3, 0),
        call(Helper::GET_PRANDOM_U32),
        mov(0, 6),
        exit(),
    ];
    let out = rules(&Rule::ALL, &program);
    assert_eq!(out.insns.len(), program.len());
    assert_eq!(out.insns[3], atomic_add(1, 6, 0));
    let deleted = out.insns.iter().filter(|i| i.is_nop_jump()).count();
    assert_eq!(deleted, out.applied.len());
    assert_eq!(deleted, 2);
}

#[test]
fn programs_with_instructions_the_rules_do_not_model_are_left_alone() {
    let legacy = Insn::new(
        Opcode::LegacyLoad {
            size: Size::W,
            indirect: false,
        },
        0,
        0,
        0,
        12,
    );
    assert_eq!(
        rewrite(&[legacy, exit()], &Rule::ALL),
        Err(Unsupported::Instruction { at: 0 })
    );
}
