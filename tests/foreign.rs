//! Programs simplebpf did not write (`tests/foreign/`), checked by `simplebpf check FILE.c`
//! itself at -O1, -O2, -Os, --mcpu v2 and v4: every right one proven, every wrong one refuted
//! with a counterexample the interpreter and the kernel reproduce (or a race), and never an
//! internal error or a replay that did not run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

/// The compilations each file is checked at.
const COMPILATIONS: &[(&str, &str)] = &[
    ("1", "v3"),
    ("2", "v3"),
    ("s", "v3"),
    ("2", "v2"),
    ("2", "v4"),
];

fn policy(dir: &str) -> PathBuf {
    let examples = common::root().join("examples");
    match dir {
        "fault" | "null" | "acl" | "ratelimit" => examples.join(format!("{dir}.appnet")),
        bench => examples.join("bench").join(format!("{bench}.appnet")),
    }
}

fn corpus() -> Vec<(String, PathBuf)> {
    let root = common::root().join("tests/foreign");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "c") {
                let name = file.strip_prefix(&root).unwrap().display().to_string();
                files.push((name, file));
            }
        }
    }
    files.sort();
    files
}

fn check(policy: &Path, file: &Path, vmlinux: &Path, opt: &str, cpu: &str, budget: &str) -> Json {
    let output = Command::new(env!("CARGO_BIN_EXE_simplebpf"))
        .arg("check")
        .arg(policy)
        .arg(file)
        .arg("-I")
        .arg(vmlinux)
        .args([
            "-O", opt, "--mcpu", cpu, "--budget", budget, "--format", "json",
        ])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("internal error"),
        "{}: {stderr}",
        file.display()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {stdout}{stderr}", file.display()))
}

#[test]
fn every_foreign_program_gets_the_verdict_it_deserves() {
    let vmlinux = common::fixtures::vmlinux_dir();
    let files = corpus();
    let wrong = files
        .iter()
        .filter(|(name, _)| name.contains("/wrong_"))
        .count();
    assert!(files.len() >= 40, "only {} programs", files.len());
    assert!(wrong >= 12, "only {wrong} wrong programs");
    let buckets = files
        .iter()
        .filter(|(name, _)| name.starts_with("ratelimit/") && !name.contains("/wrong_"))
        .count();
    assert!(buckets >= 8, "only {buckets} right token buckets");
    let mut times = Vec::new();
    for (name, file) in &files {
        let dir = name.split('/').next().unwrap();
        let policy = policy(dir);
        for (opt, cpu) in COMPILATIONS {
            let verdict = check(&policy, file, vmlinux.path(), opt, cpu, "100000000");
            let what = format!("{name} -O{opt} --mcpu {cpu}");
            if name.contains("/wrong_") {
                assert_eq!(verdict["verdict"], "not equivalent", "{what}: {verdict}");
                if verdict["reason"] != "race" {
                    let cx = &verdict["counterexample"];
                    assert_eq!(cx["replayed_in_interpreter"], true, "{what}");
                    assert_eq!(cx["reproduced_in_kernel"], true, "{what}: {cx}");
                }
            } else {
                assert_eq!(verdict["verdict"], "equivalent", "{what}: {verdict}");
                times.push((verdict["ms"].as_u64().unwrap(), what));
            }
        }
    }
    times.sort();
    eprintln!(
        "{} proofs; median {} ms, slowest {:?}",
        times.len(),
        times[times.len() / 2].0,
        times.last()
    );
}

/// A program that includes a header beside it compiles (the file's own directory is on the
/// include path), and `-I` and `-D` reach clang.
#[test]
fn check_compiles_like_a_compiler() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        std::fs::read_to_string(common::root().join("tests/foreign/fault/common_header.c"))
            .unwrap()
            .replace("#include \"../common.h\"", "#include \"common.h\"");
    std::fs::write(dir.path().join("prog.c"), &source).unwrap();
    std::fs::copy(
        common::root().join("tests/foreign/common.h"),
        dir.path().join("common.h"),
    )
    .unwrap();
    let fault = policy("fault");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_simplebpf"))
            .arg("check")
            .arg(&fault)
            .args(args)
            .output()
            .unwrap()
    };
    let prog = dir.path().join("prog.c");
    let output = run(&[prog.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The header moved elsewhere: found through -I.
    let headers = tempfile::tempdir().unwrap();
    std::fs::rename(dir.path().join("common.h"), headers.path().join("common.h")).unwrap();
    let output = run(&[prog.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("'common.h' file not found"));
    let output = run(&[
        prog.to_str().unwrap(),
        "-I",
        headers.path().to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // -D: the threshold comes from a macro.
    let macro_source = source.replace("4080218931u", "THRESHOLD");
    std::fs::write(&prog, macro_source).unwrap();
    let include = ["-I", headers.path().to_str().unwrap()];
    let mut args = vec![prog.to_str().unwrap()];
    args.extend(include);
    let output = run(&args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "THRESHOLD is undefined without -D"
    );
    args.extend(["-D", "THRESHOLD=4080218931u"]);
    let output = run(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    args.pop();
    args.push("THRESHOLD=4080218930u");
    let output = run(&args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a wrong threshold is refuted"
    );
}
