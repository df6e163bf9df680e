//! The LLM optimizer (`build --llm-optimize`) against a scripted OpenAI-compatible server
//! (real HTTP on 127.0.0.1), through the command line, on `fault_condition`. Where a cheaper
//! answer must exist, the search is held to its first program (`--optimize-budget 0`) and
//! the model answers with what the whole search finds, so "cheaper and right" exists however
//! good the search becomes; the other cases run the whole search. Every object a run writes
//! is re-checked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::scripted::{Reply, ScriptedServer, simplebpf};
use serde_json::Value as Json;

const POLICY: &str = "fault_condition";

/// The rules backend's first program tests `r < 0.5` around the rest.
const FIRST_TEST: &str = "if (r < 2147483648LL) {";
/// The draw threshold of `r < prob`, in every program's C.
const THRESHOLD: &str = "429496730";
/// One more draw value dropped: a wrong program.
const THRESHOLD_WRONG: &str = "429496731";
/// The search held to the program it starts from.
const NO_SEARCH: [&str; 2] = ["--optimize-budget", "0"];

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            common::root().join(format!("examples/bench/{POLICY}.appnet")),
            dir.path().join(format!("{POLICY}.appnet")),
        )
        .unwrap();
        Dir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn out(&self, sub: &str, ext: &str) -> PathBuf {
        self.path().join(sub).join(format!("{POLICY}.{ext}"))
    }

    /// `build` into `sub` with `extra` arguments; the report.
    fn build(&self, sub: &str, extra: &[&str]) -> (Output, Option<Json>) {
        let policy = format!("{POLICY}.appnet");
        let mut args = vec!["build", &policy, "-o", sub, "--format", "json"];
        args.extend_from_slice(extra);
        let output = simplebpf(&args, self.path());
        let report = std::fs::read_to_string(self.out(sub, "report.json"))
            .ok()
            .map(|text| serde_json::from_str(&text).unwrap());
        (output, report)
    }

    /// Whatever was written is proven by `check`.
    fn recheck(&self, sub: &str) {
        let object = self.out(sub, "bpf.o");
        let policy = format!("{POLICY}.appnet");
        let check = simplebpf(&["check", &policy, object.to_str().unwrap()], self.path());
        assert_eq!(
            check.status.code(),
            Some(0),
            "a written object is not proven:\n{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// The whole search's winner's C, with its draw threshold replaced by `threshold`.
fn searched(dir: &Dir, threshold: &str) -> String {
    let (output, _) = dir.build("plain", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let c = std::fs::read_to_string(dir.out("plain", "bpf.c")).unwrap();
    assert!(c.contains(THRESHOLD), "{c}");
    c.replace(THRESHOLD, threshold)
}

/// `build --llm-optimize` against a server playing `script`.
fn optimize(
    dir: &Dir,
    script: Vec<Reply>,
    rounds: &str,
    extra: &[&str],
) -> (ScriptedServer, Output, Json) {
    let server = ScriptedServer::start(script);
    let mut args = vec![
        "--llm-optimize",
        "--llm-url",
        &server.url,
        "--llm-model",
        "scripted",
        "--optimize-rounds",
        rounds,
    ];
    args.extend_from_slice(extra);
    let (output, report) = dir.build("llm", &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir.recheck("llm");
    (server, output, report.expect("a report"))
}

fn outcomes(report: &Json) -> Vec<String> {
    report["optimizer"]["llm"]["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect()
}

fn jited(report: &Json, when: &str) -> Option<u64> {
    report["optimizer"][when]["jited"].as_u64()
}

#[test]
fn a_cheaper_right_proposal_is_accepted_after_the_server_drops_requests() {
    let dir = Dir::new();
    let cheaper = searched(&dir, THRESHOLD);
    let (server, _, report) = optimize(
        &dir,
        vec![
            Reply::status(503, &[]),
            Reply::status(500, &[]),
            Reply::c(&cheaper),
        ],
        "3",
        &NO_SEARCH,
    );
    assert_eq!(outcomes(&report), ["accepted"]);
    assert_eq!(
        server.requests().len(),
        3,
        "two failures retried in the round"
    );
    assert_eq!(report["optimizer"]["winner"], "llm round 1");
    assert_eq!(report["checker"]["verdict"], "equivalent");
    let written = std::fs::read_to_string(dir.out("llm", "bpf.c")).unwrap();
    assert_eq!(written, cheaper);
    // The prompt showed the best program so far (the first), its cost and its instructions.
    let user = &server.messages(0)[1].1;
    assert!(user.contains("The best proven program so far"), "{user}");
    assert!(user.contains(FIRST_TEST), "{user}");
    assert!(user.contains("call bpf_get_prandom_u32#7"), "{user}");
    if let (Some(first), Some(llm)) = (jited(&report, "before"), jited(&report, "after")) {
        eprintln!("JIT: first program {first}, LLM optimizer {llm}");
        assert!(llm < first, "{first} → {llm}");
        assert!(
            user.contains(&format!("{first} x86 instructions")),
            "{user}"
        );
        // And the JIT's own code, one x86 instruction a line: as many as it counts.
        let x86 = user
            .split("made of them (what is counted):\n```\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_else(|| panic!("no x86 listing: {user}"));
        assert_eq!(x86.lines().count() as u64, first, "{x86}");
    }
}

#[test]
fn a_cheaper_wrong_proposal_is_refused_and_its_counterexample_is_the_next_prompt() {
    let dir = Dir::new();
    let wrong = searched(&dir, THRESHOLD_WRONG);
    let right = searched(&dir, THRESHOLD);
    let (server, _, report) = optimize(
        &dir,
        vec![Reply::c(&wrong), Reply::c(&right)],
        "3",
        &NO_SEARCH,
    );
    assert_eq!(outcomes(&report), ["not_equivalent", "accepted"]);
    let feedback = server.last_user(1);
    assert!(feedback.contains("counterexample"), "{feedback}");
    assert!(
        feedback.contains(THRESHOLD),
        "the draw at the boundary: {feedback}"
    );
    assert_eq!(report["optimizer"]["winner"], "llm round 2");
}

#[test]
fn a_costlier_proposal_is_refused_as_not_cheaper() {
    let dir = Dir::new();
    let (output, _) = dir.build("first", &["--no-optimize"]);
    assert!(output.status.success());
    let costlier = std::fs::read_to_string(dir.out("first", "bpf.c")).unwrap();
    let (server, _, report) = optimize(&dir, vec![Reply::c(&costlier)], "1", &[]);
    assert_eq!(outcomes(&report), ["not_cheaper"]);
    assert_eq!(server.requests().len(), 1);
    assert!(
        !report["optimizer"]["winner"]
            .as_str()
            .unwrap()
            .starts_with("llm"),
        "{}",
        report["optimizer"]
    );
    let detail = report["optimizer"]["llm"]["rounds"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("the best so far costs"), "{detail}");
}

#[test]
fn garbage_changes_nothing() {
    let dir = Dir::new();
    let (_, plain) = dir.build("plain", &[]);
    let plain = plain.unwrap();
    let script = vec![
        Reply::answer("I cannot help with that."),
        Reply::answer("```c\nint main( {\n```"),
        Reply::answer("```c\n#include \"/etc/passwd\"\n```"),
    ];
    let (_, _, report) = optimize(&dir, script, "3", &[]);
    assert_eq!(
        outcomes(&report),
        ["no_code", "clang_error", "screen_rejected"]
    );
    assert_eq!(report["optimizer"]["winner"], plain["optimizer"]["winner"]);
    let plain_object = std::fs::read(dir.out("plain", "bpf.o")).unwrap();
    let object = std::fs::read(dir.out("llm", "bpf.o")).unwrap();
    assert_eq!(
        object, plain_object,
        "the object is the search's, byte for byte"
    );
}

#[test]
fn llm_optimize_needs_a_server_and_the_rules_backend() {
    let dir = Dir::new();
    let (output, _) = dir.build("x", &["--llm-optimize"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--llm-url"), "{stderr}");
    assert!(
        !dir.path()
            .join("x")
            .join(format!("{POLICY}.bpf.o"))
            .exists()
    );
    let (output, _) = dir.build("x", &["--llm-optimize", "--no-optimize"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
}
