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

/// What the executor makes of `c`'s only XDP program, with two 64-bit state variables at
/// the start of `.bss`.
fn execute(c: &str) -> symexec::Execution {
    let elf = support::compile(c, &ClangOptions::default());
    let object = BpfObject::parse(&elf).expect("an object");
    let program = object.xdp_program(None).expect("one XDP program");
    let fields = [(".bss", 0, 8), (".bss", 8, 8)];
    let inputs = symexec::fresh_inputs(&object, &fields);
    symexec::execute(
        &program.insns,
        &inputs,
        std::time::Instant::now() + std::time::Duration::from_secs(60),
        &Cancel::new(),
        &|_| None,
    )
    .expect("the executor runs it")
}

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
    let execution = execute(&c);
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

/// A number spilled to the stack on each side of a branch and read back after the join is
/// one `ite` of the two numbers, not a concatenation of its eight bytes: the integer step
/// reads a concatenation only as sums of quotients and remainders, and gave up on the
/// queries of seven token buckets whose tokens clang had spilled. `volatile` makes clang
/// keep the value on the stack, and the barriers keep it from sinking the two stores into
/// one after the join.
#[test]
fn a_value_spilled_to_the_stack_is_read_back_whole() {
    let c = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 c0;
__u64 c1;

SEC("xdp")
int spill(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	volatile __u64 spilled;
	if (data + 100 < data_end) {
		spilled = c0;
		asm volatile("" ::: "memory");
	} else {
		spilled = c0 + 2;
		asm volatile("" ::: "memory");
	}
	c1 = spilled;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"#;
    let execution = execute(c);
    assert_eq!(execution.paths.len(), 1, "the two sides were not merged");
    let bss = &execution.paths[0].sections[".bss"];
    let c1 = bss.cells.get(&8).expect("c1 was written whole");
    let kind = c1.safe_decl().map(|d| d.kind());
    assert!(
        matches!(kind, Ok(DeclKind::Ite)),
        "c1 is {kind:?}, not one choice of two numbers: {c1}"
    );
}
