//! `simplebpf check` as a user runs it: proofs for what the backend emits, a counterexample
//! (replayed in the interpreter) for a wrong program, "unknown" outside the model.

mod common;

use std::process::{Command, Output};

fn simplebpf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simplebpf"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `simplebpf check POLICY PROGRAM --format json`: the exit status and the parsed verdict.
fn check_json(
    policy: &std::path::Path,
    program: &std::path::Path,
) -> (Option<i32>, serde_json::Value) {
    let output = simplebpf(&[
        "check",
        policy.to_str().unwrap(),
        program.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let verdict =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)));
    (output.status.code(), verdict)
}

/// Writes the shipped C of an example and returns its path.
fn shipped_c(dir: &std::path::Path, name: &str, path: &std::path::Path) -> std::path::PathBuf {
    let compiled = common::compile(name, &path.to_path_buf(), false);
    let c = dir.join(format!("{name}.bpf.c"));
    std::fs::write(&c, &compiled.emitted.c_source).unwrap();
    c
}

#[test]
fn what_the_backend_emits_is_proven_equivalent() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in common::examples() {
        let c = shipped_c(dir.path(), &name, &path);
        let output = simplebpf(&[
            "check",
            path.to_str().unwrap(),
            c.to_str().unwrap(),
            "--timeout-ms",
            "3000",
        ]);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", text(&output));
        assert!(text(&output).contains("equivalent: proven"), "{name}");
        eprintln!("{name}: {}", text(&output).lines().next().unwrap());
    }
}

#[test]
fn an_off_by_one_threshold_gets_a_counterexample_at_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let policy = common::root().join("examples/fault.appnet");
    let c = shipped_c(dir.path(), "fault", &policy);
    let wrong = std::fs::read_to_string(&c)
        .unwrap()
        .replace("< 4080218932ULL", "< 4080218931ULL");
    std::fs::write(&c, wrong).unwrap();
    let (status, report) = check_json(&policy, &c);
    assert_eq!(status, Some(1), "{report}");
    let cx = &report["counterexample"];
    assert_eq!(cx["draws"][0], 4080218931u64, "{report}");
    assert_eq!(cx["program"]["action"], "XDP_DROP");
    assert_eq!(cx["policy"]["action"], "XDP_PASS");
}

#[test]
fn modulo_bias_is_not_equivalent() {
    let dir = tempfile::tempdir().unwrap();
    let policy = common::root().join("examples/fault.appnet");
    let c = shipped_c(dir.path(), "fault", &policy);
    let wrong = std::fs::read_to_string(&c).unwrap().replace(
        "bpf_get_prandom_u32() < 4080218932ULL",
        "bpf_get_prandom_u32() % 100 < 95",
    );
    std::fs::write(&c, wrong).unwrap();
    let output = simplebpf(&["check", policy.to_str().unwrap(), c.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("not equivalent"));
}

/// Programs outside the model are "unknown" (exit 3), naming what is outside: an unbounded
/// loop, a helper the model lacks (`bpf_redirect`).
#[test]
fn programs_outside_the_model_are_unknown() {
    let policy = common::root().join("examples/null.appnet");
    for (file, reason) in [
        ("outside_model_loop.c", "loop"),
        ("outside_model_redirect.c", "helper #23"),
    ] {
        let program = common::root().join("tests/xdp").join(file);
        let output = simplebpf(&["check", policy.to_str().unwrap(), program.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(3), "{file}: {}", text(&output));
        assert!(text(&output).contains(reason), "{file}: {}", text(&output));
    }
}

/// Hand-written XDP C, one per bench policy, written the way an expert would (the optimizable
/// condition of fault_condition simplified), following the layout contract: proven.
#[test]
fn hand_written_programs_for_the_bench_policies_are_proven() {
    for name in ["logging", "logging_fault", "fault_condition"] {
        let policy = common::root().join(format!("examples/bench/{name}.appnet"));
        let program = common::root().join(format!("tests/xdp/handwritten_{name}.c"));
        let output = simplebpf(&["check", policy.to_str().unwrap(), program.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", text(&output));
        eprintln!(
            "handwritten {name}: {}",
            text(&output).lines().next().unwrap()
        );
    }
}

/// `build` proves what it emits: a wrong program (here the backend's C with the threshold off
/// by one) is refused, or written loudly marked UNPROVEN with `--allow-unproven`.
#[test]
fn build_refuses_what_it_cannot_prove() {
    use simplebpf::pipeline::{self, BuildError, BuildOptions};
    use simplebpf_checker::Verdict;
    use simplebpf_optimizer::{KernelUse, Rejection};

    let path = common::root().join("examples/fault.appnet");
    let program = common::program(&path);
    let mut emitted = common::compile("fault", &path, false).emitted;
    emitted.c_source = emitted
        .c_source
        .replace("< 4080218932ULL", "< 4080218931ULL");
    let options = BuildOptions {
        kernel: KernelUse::Skip,
        ..BuildOptions::default()
    };
    match pipeline::build_emitted("fault", &program, emitted.clone(), &options) {
        Err(BuildError::Rejected(Rejection::NotEquivalent { verdict, .. })) => {
            assert!(
                matches!(*verdict, Verdict::NotEquivalent { .. }),
                "{verdict:?}"
            );
        }
        other => panic!(
            "expected an unproven build, got {:?}",
            other.map(|b| b.report)
        ),
    }
    let loud = BuildOptions {
        allow_unproven: true,
        ..options
    };
    let built = pipeline::build_emitted("fault", &program, emitted, &loud).expect("written anyway");
    assert!(!built.report.proven());
    let dir = tempfile::tempdir().unwrap();
    let out = simplebpf::outputs::OutputDir::prepare(dir.path()).unwrap();
    let paths = pipeline::write_outputs(&built, &out, &Default::default()).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&paths.report).unwrap()).unwrap();
    assert_eq!(report["checker"]["verdict"], "not equivalent");
    assert!(
        report["checker"]["warning"]
            .as_str()
            .unwrap()
            .contains("UNPROVEN")
    );
}

#[test]
fn every_build_report_carries_the_proof() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::root().join("examples/bench/logging_fault.appnet");
    let output = simplebpf(&[
        "build",
        path.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
        "--no-kernel",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("proven"));
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("logging_fault.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["checker"]["verdict"], "equivalent");
    assert!(report["checker"]["ms"].as_u64().is_some());
    assert!(
        !report["checker"]["assumptions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// LANGUAGE.md §4.5: a read-modify-write of shared state that is neither atomic nor locked
/// loses updates under concurrency, which sequential symbolic execution cannot see; the
/// structural race check names the instruction and the variable.
#[test]
fn unprotected_read_modify_writes_are_races() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "bench/logging",
            "logging",
            "__sync_fetch_and_add(&req_count, 1LL);",
            "req_count += 1;",
            &["req_count"][..],
        ),
        (
            // Without the lock both tokens and last are read, then written.
            "ratelimit",
            "ratelimit",
            "\tbpf_spin_lock(&sb_cell->lock);\n",
            "",
            &["tokens", "last"][..],
        ),
    ];
    for (example, name, from, to, variable) in cases {
        let policy = common::root().join(format!("examples/{example}.appnet"));
        let c = shipped_c(dir.path(), name, &policy);
        let source = std::fs::read_to_string(&c).unwrap();
        assert!(source.contains(from));
        let wrong = source.replace(from, to).replace(
            "\tbpf_spin_unlock(&sb_cell->lock);\n",
            if to.is_empty() {
                ""
            } else {
                "\tbpf_spin_unlock(&sb_cell->lock);\n"
            },
        );
        std::fs::write(&c, wrong).unwrap();
        let (status, verdict) = check_json(&policy, &c);
        assert_eq!(status, Some(1), "{name}: {verdict}");
        assert_eq!(verdict["reason"], "race", "{verdict}");
        let named = verdict["variable"].as_str().unwrap_or_default();
        assert!(variable.contains(&named), "{verdict}");
    }
}
