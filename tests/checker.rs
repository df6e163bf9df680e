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
    let output = simplebpf(&[
        "check",
        policy.to_str().unwrap(),
        c.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
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

#[test]
fn a_helper_outside_the_model_is_unknown() {
    let policy = common::root().join("examples/null.appnet");
    let program = common::root().join("tests/xdp/outside_model_redirect.c");
    let output = simplebpf(&["check", policy.to_str().unwrap(), program.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("helper #23"), "{}", text(&output));
}

#[test]
fn the_hand_written_logging_program_is_proven() {
    let policy = common::root().join("examples/bench/logging.appnet");
    let program = common::root().join("tests/xdp/handwritten_logging.c");
    let output = simplebpf(&["check", policy.to_str().unwrap(), program.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}
