//! The checker on what the rules backend emits (proofs) and on hand-made wrong programs
//! (counterexamples).

mod support;

use simplebpf_checker::Verdict;
use simplebpf_compiler::clang::ClangOptions;

/// The checker's verdict on `c` (the backend's C, or a change of it) against `program`.
fn verdict(program: &simplebpf_dsl::ir::Program, c: &str) -> Verdict {
    support::verdict(program, &support::compile(c, &ClangOptions::default()))
}

/// An example's IR and the C the backend emits for it.
fn emitted(name: &str) -> (simplebpf_dsl::ir::Program, String) {
    support::emit(&std::fs::read_to_string(support::example_path(name)).unwrap()).unwrap()
}

#[test]
fn the_examples_built_by_the_backend_are_proven_equivalent() {
    for name in support::EXAMPLES {
        let (program, c) = emitted(name);
        let verdict = verdict(&program, &c);
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

/// Floats stored in a map's values and in a vector's records are at the scale the object
/// names in `__scale_<name>`, like float globals (they were read at scale 1: a false alarm).
#[test]
fn floats_in_maps_and_vectors_are_proven() {
    for policy in [
        "state:\n\tseen: Map<int, float>\n\ninit():\n\tpass\n\nreq(rpc):\n\tset(seen, byte_size(rpc, 'body'), 0.5)\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
        "state:\n\tv: Vec<float>\n\ninit():\n\tpass\n\nreq(rpc):\n\tset(v, size(v), 0.25)\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ] {
        let (program, c) = support::emit(policy).unwrap();
        let verdict = verdict(&program, &c);
        assert!(
            matches!(verdict, Verdict::Equivalent { .. }),
            "{policy}: {verdict:?}"
        );
    }
}

#[test]
fn wrong_programs_get_a_counterexample() {
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
        let (program, c) = emitted(name);
        assert!(c.contains(from), "{from}");
        let verdict = verdict(&program, &c.replace(from, to));
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
