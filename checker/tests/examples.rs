//! The checker on what the rules backend emits (proofs) and on hand-made wrong programs
//! (counterexamples).

use std::path::PathBuf;
use std::time::Duration;

use simplebpf_checker::{Options, Verdict, check};
use simplebpf_compiler::backend;
use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_compiler::object_model::BpfObject;

fn build(path: &PathBuf, name: &str) -> (simplebpf_dsl::ir::Program, BpfObject) {
    let analysis = simplebpf_dsl::analyze(&std::fs::read_to_string(path).unwrap());
    let program = analysis.ir.unwrap();
    let emitted = backend::emit(
        &program,
        &backend::Options {
            port: 9000,
            name: name.to_string(),
            test_hooks: false,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let elf = clang::compile(&emitted.c_source, dir.path(), &ClangOptions::default()).unwrap();
    (program, BpfObject::parse(&elf).unwrap())
}

#[test]
fn the_examples_built_by_the_backend_are_proven_equivalent() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for name in [
        "null",
        "fault",
        "bench/logging",
        "bench/logging_fault",
        "bench/fault_condition",
        "acl",
        "ratelimit",
    ] {
        let path = root.join(format!("{name}.appnet"));
        let (program, object) = build(&path, name.rsplit('/').next().unwrap());
        let verdict = check(
            &program,
            &object,
            &Options {
                port: 9000,
                timeout: Duration::from_secs(20),
            },
        );
        match &verdict {
            Verdict::Equivalent { ms, paths, .. } => {
                eprintln!("{name}: equivalent in {ms} ms ({paths} paths)")
            }
            Verdict::NotEquivalent { counterexample, ms } => {
                eprintln!("{name}: NOT equivalent ({ms} ms): {counterexample:?}")
            }
            other => eprintln!("{name}: {other:?}"),
        }
        assert!(
            matches!(verdict, Verdict::Equivalent { .. }),
            "{name}: {verdict:?}"
        );
    }
}

#[test]
fn wrong_programs_get_a_counterexample() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (name, from, to) in [
        ("fault", "< 4080218932ULL", "< 4080218931ULL"),
        (
            "bench/logging",
            "__sync_fetch_and_add(&req_count, 1LL);",
            "__sync_fetch_and_add(&req_count, 2LL);",
        ),
        (
            "bench/logging",
            "bpf_htons(SERVICE_PORT)",
            "bpf_htons(9001)",
        ),
        (
            "fault",
            "bpf_get_prandom_u32() < 4080218932ULL",
            "bpf_get_prandom_u32() % 100 < 95",
        ),
        // The refill without its overflow cap, and the fixed point at the wrong scale.
        ("ratelimit", "\tif (x >= cap)\n\t\treturn cap;\n", ""),
        (
            "ratelimit",
            "__scale_tokens = 1000000;",
            "__scale_tokens = 1000;",
        ),
    ] {
        let path = root.join(format!("{name}.appnet"));
        let analysis = simplebpf_dsl::analyze(&std::fs::read_to_string(&path).unwrap());
        let program = analysis.ir.unwrap();
        let emitted = backend::emit(
            &program,
            &backend::Options {
                port: 9000,
                name: "m".to_string(),
                test_hooks: false,
            },
        )
        .unwrap();
        assert!(emitted.c_source.contains(from), "{from}");
        let c = emitted.c_source.replace(from, to);
        let dir = tempfile::tempdir().unwrap();
        let elf = clang::compile(&c, dir.path(), &ClangOptions::default()).unwrap();
        let object = BpfObject::parse(&elf).unwrap();
        let verdict = check(
            &program,
            &object,
            &Options {
                port: 9000,
                timeout: Duration::from_secs(20),
            },
        );
        match &verdict {
            Verdict::NotEquivalent { counterexample, ms } => eprintln!(
                "{name} [{to}]: NOT equivalent ({ms} ms): draws {:?} now {} action {} pre {:?} post {:?} packet {} bytes",
                counterexample.draws,
                counterexample.now,
                counterexample.program_action,
                counterexample.pre_state,
                counterexample.program_post,
                counterexample.packet.len()
            ),
            other => eprintln!("{name} [{to}]: {other:?}"),
        }
        assert!(
            matches!(verdict, Verdict::NotEquivalent { .. }),
            "{name} [{to}]: {verdict:?}"
        );
    }
}
