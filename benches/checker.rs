//! The checker's speed, printed, never asserted (timing on a shared VM is not a test):
//!
//! - `corpus`: the proof time of every program in `tests/foreign/` (each checked once at -O2
//!   -mcpu=v3), with the median and the maximum (ISSUE 10's targets: each under 1 s);
//! - `scaling`: `build` of generated policies — n counters each adding the payload size, n
//!   token buckets, n independent matches — with the proof time of each.
//!
//! Run with `cargo bench --bench checker [corpus|scaling]` (both by default).

#[path = "../tests/common/fixtures.rs"]
mod fixtures;

use std::path::{Path, PathBuf};
use std::time::Instant;

use simplebpf::pipeline::{self, BuildError, BuildOptions};
use simplebpf_checker::{Options, Session, Verdict};
use simplebpf_compiler::clang::ClangOptions;
use simplebpf_optimizer::{Candidate, GateOptions, KernelUse, Origin, Rejection, Source};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("corpus") {
        corpus();
    }
    if wants("scaling") {
        scaling();
    }
}

fn policy_of(dir: &str) -> PathBuf {
    match dir {
        "fault" | "null" | "acl" | "ratelimit" => root().join(format!("examples/{dir}.appnet")),
        bench => root().join(format!("examples/bench/{bench}.appnet")),
    }
}

fn verdict_name(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Equivalent { .. } => "equivalent".to_string(),
        Verdict::NotEquivalent { counterexample, .. } => {
            format!("not equivalent ({})", counterexample.found_by)
        }
        Verdict::Race { variable, .. } => format!("race on {variable}"),
        Verdict::Unknown { reason } => format!("unknown: {reason}"),
    }
}

fn corpus() {
    let vmlinux = fixtures::vmlinux_dir();
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root().join("tests/foreign")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for file in std::fs::read_dir(&dir).unwrap() {
                let file = file.unwrap().path();
                if file.extension().is_some_and(|e| e == "c") {
                    files.push(file);
                }
            }
        }
    }
    files.sort();
    println!("{:<50} {:>8}  verdict", "program (-O2 -mcpu=v3)", "ms");
    let mut proofs = Vec::new();
    for file in &files {
        let dir = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        let name = format!("{dir}/{}", file.file_name().unwrap().to_string_lossy());
        let (ms, verdict) = check(&policy_of(&dir), file, vmlinux.path());
        if verdict == "equivalent" {
            proofs.push(ms);
        }
        println!("{name:<50} {ms:>8}  {verdict}");
    }
    proofs.sort_unstable();
    if let (Some(max), false) = (proofs.last(), proofs.is_empty()) {
        println!(
            "{} proofs: median {} ms, maximum {max} ms (targets: each under 1000)",
            proofs.len(),
            proofs[proofs.len() / 2]
        );
    }
}

/// Proves one file as `simplebpf check` does (the kernel's pre-tests included): wall ms and
/// the verdict's name.
fn check(policy: &Path, file: &Path, vmlinux: &Path) -> (u128, String) {
    let source = std::fs::read(policy).unwrap();
    let program = simplebpf_dsl::analyze_bytes(&source).ir.unwrap();
    let mut session = Session::new(&program, Options::default());
    let options = GateOptions {
        clang: ClangOptions {
            include_dirs: vec![file.parent().unwrap().to_path_buf(), vmlinux.to_path_buf()],
            ..ClangOptions::default()
        },
        kernel: KernelUse::Skip,
        require_proof: false,
        ..GateOptions::default()
    };
    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let result = simplebpf_optimizer::gate(
        Candidate {
            source: Source::CFile(file.to_path_buf()),
            origin: Origin::File(file.to_path_buf()),
            program: None,
        },
        Some(&mut session),
        &options,
        scratch.path(),
    );
    let ms = started.elapsed().as_millis();
    let verdict = match result {
        Ok(gated) => verdict_name(&gated.verdict.expect("a policy was given")),
        Err(err) => format!("refused: {err}"),
    };
    (ms, verdict)
}

/// `n` token buckets, each refilled by the time since its last request and taken from when
/// it has a token; the request is forwarded.
fn buckets(n: usize) -> String {
    let mut text = String::from("state:\n\tlimit: float\n\trate: float\n");
    for i in 0..n {
        text.push_str(&format!("\tt{i}: float\n\tl{i}: Instant\n"));
    }
    text.push_str("\ninit():\n\tlimit = 100.0\n\trate = 1000.0\n");
    for i in 0..n {
        text.push_str(&format!("\tt{i} = 100.0\n\tl{i} = current_time()\n"));
    }
    text.push_str("\nreq(rpc):\n");
    for i in 0..n {
        text.push_str(&format!(
            "\tt{i} = min(limit, t{i} + (rate * time_diff(current_time(), l{i})))\n\tl{i} = current_time()\n"
        ));
    }
    for i in 0..n {
        text.push_str(&format!(
            "\tmatch t{i} >= 1.0:\n\t\ttrue =>\n\t\t\tt{i} = t{i} - 1.0\n\t\tfalse =>\n\t\t\tpass\n"
        ));
    }
    text + "\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n"
}

/// `n` independent matches on the payload size, each counting into its own variable.
fn matches(n: usize) -> String {
    let mut text = String::from("state:\n");
    for i in 0..n {
        text.push_str(&format!("\tm{i}: int\n"));
    }
    text.push_str("\ninit():\n\tpass\n\nreq(rpc):\n");
    for i in 0..n {
        text.push_str(&format!(
            "\tmatch byte_size(rpc, 'body') > {}:\n\t\ttrue =>\n\t\t\tm{i} = m{i} + 1\n\t\tfalse =>\n\t\t\tpass\n",
            10 * (i + 1)
        ));
    }
    text + "\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n"
}

/// A family of generated policies: its name, the generator, the sizes.
type Family = (&'static str, fn(usize) -> String, &'static [usize]);

fn scaling() {
    println!(
        "\n{:<22} {:>10} {:>10}  verdict",
        "policy", "build ms", "proof ms"
    );
    let families: [Family; 3] = [
        (
            "counters",
            fixtures::counters_policy,
            &[1, 2, 4, 8, 16, 32, 64],
        ),
        ("token buckets", buckets, &[1, 2, 3, 4, 5, 6, 7, 8]),
        ("matches", matches, &[1, 2, 4, 8, 12, 16]),
    ];
    for (family, generate, sizes) in families {
        for &n in sizes {
            let options = BuildOptions {
                kernel: KernelUse::Verify { measure: false },
                ..BuildOptions::default()
            };
            let started = Instant::now();
            let result = pipeline::build("scaling", generate(n).as_bytes(), &options);
            let build_ms = started.elapsed().as_millis();
            let (proof, verdict) = match result {
                Ok(built) => match built.gated.verdict {
                    Some(Verdict::Equivalent { ms, .. }) => (ms.to_string(), "proven".to_string()),
                    other => ("-".to_string(), format!("{other:?}")),
                },
                Err(BuildError::Rejected(Rejection::Unknown { reason })) => {
                    ("-".to_string(), format!("unknown: {reason}"))
                }
                Err(err) => ("-".to_string(), format!("refused: {err}")),
            };
            println!(
                "{:<22} {build_ms:>10} {proof:>10}  {verdict}",
                format!("{family} n={n}")
            );
        }
    }
}
