//! How the symbolic executor merges paths, seen from outside, on what clang makes of a
//! program.

mod support;

use simplebpf_checker::symexec;
use simplebpf_compiler::backend::{FilterShape, Strategy};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::ClangOptions;
use simplebpf_compiler::object_model::BpfObject;
use z3::DeclKind;
use z3::ast::Ast;

/// A counter one branch adds to: after the join it is one value (an `ite` of the sum and the
/// stored value), not eight bytes each chosen apart. Byte-wise merging cost the solver
/// 0.4 million resource units per such counter (n matches on the payload size). The program
/// is the backend's, with the fused filter the optimizer picks for those matches.
#[test]
fn a_value_one_path_stored_merges_whole() {
    let policy = "state:\n\tm0: int\n\tm1: int\n\ninit():\n\tpass\n\nreq(rpc):\n\
        \tmatch byte_size(rpc, 'body') > 10:\n\t\ttrue =>\n\t\t\tm0 = m0 + 1\n\t\tfalse =>\n\t\t\tpass\n\
        \tmatch byte_size(rpc, 'body') > 20:\n\t\ttrue =>\n\t\t\tm1 = m1 + 1\n\t\tfalse =>\n\t\t\tpass\n\
        \tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n";
    let strategy = Strategy {
        filter: FilterShape::Fused,
        ..Strategy::default()
    };
    let (_, c) = support::emit_with(policy, strategy).expect("the policy compiles");
    let elf = support::compile(&c, &ClangOptions::default());
    let object = BpfObject::parse(&elf).expect("an object");
    let program = object.xdp_program(None).expect("one XDP program");
    let fields = [(".bss", 0, 8), (".bss", 8, 8)];
    let inputs = symexec::fresh_inputs(&object, &fields);
    let execution = symexec::execute(
        &program.insns,
        &inputs,
        std::time::Instant::now() + std::time::Duration::from_secs(60),
        &Cancel::new(),
        &|_| None,
    )
    .expect("the executor runs it");
    let mut seen = 0;
    for path in &execution.paths {
        let Some(bss) = path.sections.get(".bss") else {
            continue;
        };
        for (offset, value) in &bss.cells {
            seen += 1;
            assert!(
                (*offset == 0 || *offset == 8) && value.get_size() == 64,
                "a cell of {} bits at .bss+{offset}: the counter was merged in pieces",
                value.get_size()
            );
        }
    }
    // The test means something only where a counter was merged: a cell that is an `ite`.
    let merged = execution.paths.iter().any(|path| {
        path.sections.get(".bss").is_some_and(|bss| {
            bss.cells
                .values()
                .any(|value| value.safe_decl().is_ok_and(|d| d.kind() == DeclKind::Ite))
        })
    });
    assert!(
        merged && seen >= 2,
        "no counter was merged where the branches join ({seen} cells)"
    );
}
