//! The C the rules backend writes for every example (snapshots: a person reviews them), and
//! the diagnostics for what the eBPF target cannot run exactly.

use std::path::PathBuf;

use simplebpf_compiler::backend::{self, Options};
use simplebpf_dsl::render::{RenderOptions, render};

fn examples() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut found = Vec::new();
    for dir in [root.clone(), root.join("bench")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "appnet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn options(name: &str) -> Options {
    Options {
        port: 9000,
        name: name.to_string(),
        test_hooks: false,
        strategy: Default::default(),
    }
}

#[test]
fn every_example_becomes_readable_c() {
    for path in examples() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let analysis = simplebpf_dsl::analyze(&std::fs::read_to_string(&path).unwrap());
        let emitted = backend::emit(analysis.ir.as_ref().unwrap(), &options(&name))
            .unwrap_or_else(|d| panic!("{name}: {d:?}"));
        insta::assert_snapshot!(format!("c_{name}"), emitted.c_source);
    }
}

/// `branches=merged` on fault_condition: one draw, taken only for a payload over 100 bytes,
/// and `r < 0.5` gone because `r < 0.1` implies it; with the fused filter, no size test left
/// in the handler.
#[test]
fn merged_branches_test_the_packet_before_the_draw() {
    let path = examples()
        .into_iter()
        .find(|p| p.ends_with("bench/fault_condition.appnet"))
        .unwrap();
    let analysis = simplebpf_dsl::analyze(&std::fs::read_to_string(&path).unwrap());
    let options = Options {
        strategy: backend::Strategy {
            branches: backend::BranchShape::Merged,
            ..Default::default()
        },
        ..options("fault_condition")
    };
    let emitted = backend::emit(analysis.ir.as_ref().unwrap(), &options).unwrap();
    let body = &emitted.c_source[emitted.c_source.find("SEC(\"xdp\")").unwrap()..];
    insta::assert_snapshot!(body);

    // With the fused filter, the size test moves into the filter's length check.
    let fused = Options {
        strategy: backend::Strategy {
            filter: backend::FilterShape::Fused,
            ..options.strategy
        },
        ..options
    };
    let emitted = backend::emit(analysis.ir.as_ref().unwrap(), &fused).unwrap();
    let c = &emitted.c_source;
    assert!(c.contains("#define MIN_PAYLOAD 101\n"), "{c}");
    assert!(
        c.contains("if (length > 0xFFF7 - MIN_PAYLOAD || end + MIN_PAYLOAD + length > data_end)"),
        "{c}"
    );
    let handler = &c[c.find("SEC(\"xdp\")").unwrap()..];
    insta::assert_snapshot!("merged_branches_with_the_fused_filter", handler);

    // And the verdict as the borrow of `r - threshold`.
    let arithmetic = Options {
        strategy: backend::Strategy {
            verdicts: backend::VerdictShape::Arithmetic,
            ..fused.strategy
        },
        ..fused
    };
    let emitted = backend::emit(analysis.ir.as_ref().unwrap(), &arithmetic).unwrap();
    let c = &emitted.c_source;
    let handler = &c[c.find("SEC(\"xdp\")").unwrap()..];
    insta::assert_snapshot!("merged_branches_with_an_arithmetic_verdict", handler);
}

/// `verdicts=arithmetic` changes only a test whose two arms are a reject and a forward and
/// nothing else: logging_fault counts its drops, ratelimit holds the lock.
#[test]
fn arithmetic_verdicts_leave_other_handlers_alone() {
    for name in ["logging_fault", "ratelimit", "logging"] {
        let path = examples()
            .into_iter()
            .find(|p| p.file_stem().unwrap() == name)
            .unwrap();
        let analysis = simplebpf_dsl::analyze(&std::fs::read_to_string(&path).unwrap());
        let emit = |verdicts| {
            let options = Options {
                strategy: backend::Strategy {
                    verdicts,
                    ..Default::default()
                },
                ..options(name)
            };
            backend::emit(analysis.ir.as_ref().unwrap(), &options)
                .unwrap()
                .c_source
        };
        assert_eq!(
            emit(backend::VerdictShape::Arithmetic),
            emit(backend::VerdictShape::Branch),
            "{name}"
        );
    }
}

/// Policies the eBPF target refuses, each with the reason it must give.
const REFUSED: &[(&str, &str)] = &[
    (
        "denominator_grows",
        "state:\n\tx: float\n\ninit():\n\tx = 1.0\n\nreq(rpc):\n\tx = x / 3.0\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ),
    (
        "unbounded_float_add",
        "state:\n\ttotal: float\n\ninit():\n\ttotal = 0.0\n\nreq(rpc):\n\ttotal = total + 1.0\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ),
    (
        "product_of_runtime_floats",
        "state:\n\ta: float\n\tb: float\n\ninit():\n\tpass\n\nreq(rpc):\n\tmatch a * b > 1.0:\n\t\ttrue =>\n\t\t\tb = 0.0\n\t\tfalse =>\n\t\t\ta = 0.0\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ),
    (
        "effectful_resp",
        "state:\n\tn: int\n\ninit():\n\tpass\n\nreq(rpc):\n\tsend(rpc, Down)\n\nresp(rpc):\n\tn = n + 1\n\tsend(rpc, Up)\n",
    ),
    (
        "map_read_modify_write",
        "state:\n\tseen: Map<int, int>\n\ninit():\n\tpass\n\nreq(rpc):\n\tmatch get(seen, 1):\n\t\tSome(n) =>\n\t\t\tset(seen, 1, n + 1)\n\t\tNone =>\n\t\t\tset(seen, 1, 1)\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ),
    (
        "runtime_string",
        "state:\n\tlast: string\n\ninit():\n\tpass\n\nreq(rpc):\n\tlast = 'seen'\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ),
    (
        "two_draws_in_one_operator",
        "state:\n\tpass\n\ninit():\n\tpass\n\nreq(rpc):\n\tmatch randomf(0, 1) < randomf(0, 1):\n\t\ttrue =>\n\t\t\tsend(err('x'), Up)\n\t\tfalse =>\n\t\t\tpass\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    ),
];

#[test]
fn what_the_target_cannot_run_exactly_is_refused_with_the_reason() {
    for (name, source) in REFUSED {
        let analysis = simplebpf_dsl::analyze(source);
        assert!(!analysis.has_errors(), "{name}: {:?}", analysis.diagnostics);
        let diagnostics = match backend::emit(analysis.ir.as_ref().unwrap(), &options(name)) {
            Ok(emitted) => panic!("{name} compiled:\n{}", emitted.c_source),
            Err(diagnostics) => diagnostics,
        };
        let text: String = diagnostics
            .iter()
            .map(|d| {
                render(
                    d,
                    &format!("{name}.appnet"),
                    source,
                    RenderOptions { color: false },
                )
            })
            .collect();
        insta::assert_snapshot!(format!("refused_{name}"), text);
    }
}

/// `addends=reloaded` puts the clobber barrier before every atomic add of a constant and
/// nowhere else; the default puts none.
#[test]
fn reloaded_addends_put_a_barrier_before_each_constant_add() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/logging_fault.appnet");
    let analysis = simplebpf_dsl::analyze(&std::fs::read_to_string(&path).unwrap());
    let program = analysis.ir.unwrap();
    let barrier = r#"asm volatile("" ::: "r6", "r7", "r8", "r9");"#;
    let mut reloaded = options("logging_fault");
    reloaded.strategy.addends = backend::AddendPlace::Reloaded;
    let c = backend::emit(&program, &reloaded).unwrap().c_source;
    let lines: Vec<&str> = c.lines().map(str::trim).collect();
    let adds: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("__sync_fetch_and_add("))
        .collect();
    assert_eq!(adds.len(), 2, "{c}");
    for i in adds {
        assert_eq!(lines[i - 1], barrier, "{c}");
    }
    assert_eq!(c.matches(barrier).count(), 2, "{c}");
    let kept = backend::emit(&program, &options("logging_fault"))
        .unwrap()
        .c_source;
    assert!(!kept.contains(barrier), "{kept}");
}
