//! Bytecode rewrites through the one gate: the rules' rewrite of a real object is proven and
//! cheaper, and a deliberately wrong rewrite (a store the "dead definition" rule has no right
//! to delete) is refused with a counterexample.

mod common;

use simplebpf_checker::{Session, Verdict};
use simplebpf_compiler::backend::{FilterShape, Strategy};
use simplebpf_compiler::kernel;
use simplebpf_compiler::object_model::Insn;
use simplebpf_compiler::object_model::insn::Opcode;
use simplebpf_optimizer::rewrite::{self, Rule};
use simplebpf_optimizer::{Candidate, GateOptions, Origin, Rejection, Source, gate};

/// logging_fault with the fused filter: clang loads the constant 1 twice around the draw.
fn object() -> common::Compiled {
    let path = common::root().join("examples/bench/logging_fault.appnet");
    let strategy = Strategy {
        filter: FilterShape::Fused,
        lock: None,
        ..Strategy::default()
    };
    common::compile_with("logging_fault", &path, false, strategy)
}

fn options() -> GateOptions {
    GateOptions {
        port: common::PORT,
        kernel_required: kernel::kernel_required(),
        ..GateOptions::default()
    }
}

fn session(program: &simplebpf_dsl::ir::Program) -> Session {
    Session::new(
        program,
        simplebpf_checker::Options {
            port: common::PORT,
            ..simplebpf_checker::Options::default()
        },
    )
}

fn candidate(elf: Vec<u8>, name: &str, what: &str) -> Candidate {
    Candidate {
        source: Source::Elf(elf),
        origin: Origin::Optimizer(what.to_string()),
        program: Some(name.to_string()),
    }
}

#[test]
fn the_rules_rewrite_of_a_compiled_object_is_proven_and_smaller() {
    let compiled = object();
    let prog = compiled.object.xdp_program(None).unwrap();
    let out = rewrite::rewrite(&prog.insns, &Rule::ALL).unwrap();
    assert!(
        out.applied.iter().any(|a| a.rule == Rule::ConstantReuse),
        "{:?}",
        out.applied
    );
    let elf = prog.patched(&compiled.elf, &out.insns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut session = session(&compiled.program);
    let original = gate(
        candidate(compiled.elf.clone(), &prog.name, "as compiled"),
        Some(&mut session),
        &options(),
        dir.path(),
    )
    .unwrap();
    let rewritten = gate(
        candidate(elf, &prog.name, &out.describe()),
        Some(&mut session),
        &options(),
        dir.path(),
    )
    .unwrap_or_else(|rejection| panic!("{}: {rejection}", out.describe()));
    assert!(matches!(
        rewritten.verdict,
        Some(Verdict::Equivalent { .. })
    ));
    assert_eq!(rewritten.elf_insns + out.applied.len(), original.elf_insns);
    let (Some(before), Some(after)) = (original.cost().jited, rewritten.cost().jited) else {
        eprintln!("kernel not used: only ELF instructions compared");
        return;
    };
    eprintln!(
        "{}: JIT {before} → {after}, ELF {} → {}",
        out.describe(),
        original.elf_insns,
        rewritten.elf_insns
    );
    assert!(after < before, "JIT {before} → {after}");
}

#[test]
fn a_wrong_rewrite_is_refused_with_a_counterexample() {
    let compiled = object();
    let prog = compiled.object.xdp_program(None).unwrap();
    // "Dead definition" without the liveness check, applied to a store: the first atomic
    // add (req_count += 1) is deleted.
    let mut insns = prog.insns.clone();
    let at = insns
        .iter()
        .position(|insn| matches!(insn.opcode, Opcode::Atomic { .. }))
        .expect("an atomic add");
    insns[at] = Insn::nop();
    let elf = prog.patched(&compiled.elf, &insns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut session = session(&compiled.program);
    let rejection = gate(
        candidate(elf, &prog.name, "a wrong rewrite"),
        Some(&mut session),
        &options(),
        dir.path(),
    )
    .expect_err("a program that never counts requests is not logging_fault");
    let Rejection::NotEquivalent { verdict, .. } = rejection else {
        panic!("{rejection}");
    };
    let Verdict::NotEquivalent { counterexample, .. } = *verdict else {
        panic!("{verdict:?}");
    };
    assert!(!counterexample.packet.is_empty());
    eprintln!(
        "refused with a {}-byte counterexample packet",
        counterexample.packet.len()
    );
}
