//! The LLM backend against a scripted OpenAI-compatible server (real HTTP on 127.0.0.1),
//! through the command line a user runs. Each scenario asserts on the prompts the server
//! received, and every scenario goes through `run`, which re-checks whatever a build wrote
//! with `simplebpf check`: no scenario may leave an object the checker has not proven.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::scripted::{Reply, ScriptedServer, simplebpf};
use serde_json::Value as Json;
use simplebpf_compiler::backend;

/// The proven program: what the rules backend writes for `fault`.
fn right() -> String {
    let program = common::program(&common::root().join("examples/fault.appnet"));
    backend::emit(
        &program,
        &backend::Options {
            port: common::PORT,
            name: "fault".to_string(),
            test_hooks: false,
            strategy: Default::default(),
        },
    )
    .expect("fault lowers")
    .c_source
}

/// A draw taken modulo 100: biased, so not equivalent (a counterexample).
fn modulo_biased() -> String {
    let c = right();
    let biased = c.replace(
        "bpf_get_prandom_u32() < 4080218932ULL",
        "bpf_get_prandom_u32() % 100 < 95",
    );
    assert_ne!(biased, c, "the mutation applies");
    biased
}

/// The UDP header read without its bounds check: the verifier refuses it.
fn missing_bounds_check() -> String {
    let c = right();
    let broken = c.replace(
        "\tif ((void *)(udp + 1) > data_end)\n\t\treturn 0;\n\tif (udp->dest",
        "\tif (udp->dest",
    );
    assert_ne!(broken, c, "the mutation applies");
    broken
}

struct Scenario<'a> {
    script: Vec<Reply>,
    args: &'a [&'a str],
}

struct Ran {
    server: ScriptedServer,
    output: Output,
    dir: tempfile::TempDir,
    elapsed: Duration,
}

impl Ran {
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn policy(&self) -> PathBuf {
        self.dir.path().join("fault.appnet")
    }
    fn lock(&self) -> PathBuf {
        self.dir.path().join("fault.appnet.lock")
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    fn report(&self) -> Json {
        let text = std::fs::read_to_string(self.out().join("fault.report.json")).expect("a report");
        serde_json::from_str(&text).unwrap()
    }
    fn outcomes(&self) -> Vec<String> {
        self.report()["backend"]["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Builds `fault` with the LLM backend against a server playing `script`, then re-checks
/// whatever was written.
fn run(scenario: Scenario<'_>) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::root().join("examples/fault.appnet"),
        dir.path().join("fault.appnet"),
    )
    .unwrap();
    let server = ScriptedServer::start(scenario.script);
    let mut args = vec![
        "build",
        "fault.appnet",
        "-o",
        "out",
        "--backend",
        "llm",
        "--llm-url",
        &server.url,
        "--llm-model",
        "scripted",
    ];
    args.extend_from_slice(scenario.args);
    let started = Instant::now();
    let output = simplebpf(&args, dir.path());
    let ran = Ran {
        server,
        output,
        dir,
        elapsed: started.elapsed(),
    };
    recheck(&ran);
    ran
}

/// Whatever a build wrote, the checker proves; a build that failed wrote nothing.
fn recheck(ran: &Ran) {
    let object = ran.out().join("fault.bpf.o");
    if ran.code() != Some(0) {
        assert!(
            !ran.out().exists() || std::fs::read_dir(ran.out()).unwrap().next().is_none(),
            "a failed build wrote files:\n{}",
            ran.stderr()
        );
        return;
    }
    assert!(object.exists(), "a successful build wrote no object");
    let check = simplebpf(
        &["check", "fault.appnet", "out/fault.bpf.o"],
        ran.dir.path(),
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "a written object is not proven:\n{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(
        !ran.stdout().contains("sk-test") && !ran.stderr().contains("sk-test"),
        "the key was printed"
    );
    let report = std::fs::read_to_string(ran.out().join("fault.report.json")).unwrap();
    assert!(!report.contains("sk-test"), "the key is in the report");
}

#[test]
fn right_the_first_time() {
    let ran = run(Scenario {
        script: vec![Reply::c(&right())],
        args: &["--llm-stream", "false"],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert!(ran.stdout().contains("llm (round 1)"), "{}", ran.stdout());
    assert_eq!(ran.outcomes(), ["accepted"]);
    let report = ran.report();
    assert_eq!(report["backend"]["kind"], "llm");
    assert_eq!(report["backend"]["fallback"], false);
    assert_eq!(report["backend"]["model"], "scripted");
    assert_eq!(report["backend"]["lock"], "written");
    assert_eq!(report["backend"]["rounds"][0]["completion_tokens"], 200);
    assert_eq!(
        report["backend"]["prompt_sha256"].as_str().unwrap().len(),
        64
    );
    // What the model was sent: the contract, the policy, its IR, the exact threshold and
    // two example pairs.
    let requests = ran.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["model"], "scripted");
    assert_eq!(requests[0]["stream"], false);
    let messages = ran.server.messages(0);
    assert_eq!(messages[0].0, "system");
    assert!(messages[0].1.contains("exactly one fenced C code block"));
    let user = &messages[1].1;
    assert!(user.contains("match randomf(0, 1) < prob"), "{user}");
    assert!(user.contains("4080218932"), "{user}");
    assert_eq!(
        user.matches("A proven program for it:").count(),
        2,
        "{user}"
    );
    // The written C is the answer's.
    let c = std::fs::read_to_string(ran.out().join("fault.bpf.c")).unwrap();
    assert_eq!(c, right());
    assert!(ran.lock().exists());
}

#[test]
fn a_streamed_answer_is_read() {
    let ran = run(Scenario {
        script: vec![Reply::streamed_c(&right())],
        args: &["--llm-stream", "true"],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert_eq!(ran.outcomes(), ["accepted"]);
    assert_eq!(ran.server.requests()[0]["stream"], true);
    // Not on a terminal: no progress line.
    assert!(!ran.stderr().contains("round 1/"), "{}", ran.stderr());
}

#[test]
fn a_counterexample_is_the_next_prompt() {
    let ran = run(Scenario {
        script: vec![Reply::c(&modulo_biased()), Reply::c(&right())],
        args: &[],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert!(ran.stdout().contains("llm (round 2)"), "{}", ran.stdout());
    assert_eq!(ran.outcomes(), ["not_equivalent", "accepted"]);
    let feedback = ran.server.last_user(1);
    assert!(feedback.contains("counterexample"), "{feedback}");
    assert!(feedback.contains("draws"), "{feedback}");
    assert!(
        feedback.contains("XDP_DROP") && feedback.contains("XDP_PASS"),
        "{feedback}"
    );
    // The conversation keeps the rejected answer.
    let messages = ran.server.messages(1);
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2].0, "assistant");
    assert!(messages[2].1.contains("% 100"));
}

#[test]
fn a_verifier_log_is_the_next_prompt() {
    let ran = run(Scenario {
        script: vec![Reply::c(&missing_bounds_check()), Reply::c(&right())],
        args: &[],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert_eq!(ran.outcomes(), ["verifier_rejected", "accepted"]);
    let feedback = ran.server.last_user(1);
    assert!(feedback.contains("verifier"), "{feedback}");
    // The raw log: instructions and the error line, not a summary.
    assert!(feedback.contains("invalid access to packet"), "{feedback}");
    assert!(feedback.contains("*(u16 *)"), "{feedback}");
}

#[test]
fn hostile_answers_are_screened_before_clang_and_fed_back() {
    let include = format!("#include \"/etc/shadow\"\n{}", right());
    let asm = right().replace(
        "\t__s64 payload_len;\n",
        "\t__s64 payload_len;\n\tasm volatile(\"r0 = 2\\n\\texit\");\n",
    );
    let huge = format!("```c\n{}\n```", "/* x */\n".repeat(10 * 1024 * 1024 / 8));
    let ran = run(Scenario {
        script: vec![
            Reply::c(&include),
            Reply::c(&asm),
            Reply::answer(&huge),
            Reply::answer("I would rather not write C today."),
            Reply::finished("```c\n#include <linux/bpf.h>\nint x", "length"),
            Reply::c(&right()),
        ],
        args: &["--rounds", "6"],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert_eq!(
        ran.outcomes(),
        [
            "screen_rejected",
            "screen_rejected",
            "screen_rejected",
            "no_code",
            "truncated",
            "accepted"
        ]
    );
    let rounds = ran.report()["backend"]["rounds"].clone();
    assert!(
        rounds[0]["detail"]
            .as_str()
            .unwrap()
            .contains("/etc/shadow")
    );
    assert!(
        rounds[1]["detail"]
            .as_str()
            .unwrap()
            .contains("inline assembly")
    );
    assert!(rounds[2]["detail"].as_str().unwrap().contains("bytes"));
    // Each rejection was the next prompt; nothing of /etc/shadow came back from clang.
    assert!(
        ran.server
            .last_user(1)
            .contains("`#include \"/etc/shadow\"` is not allowed")
    );
    assert!(ran.server.last_user(2).contains("inline assembly"));
    assert!(ran.server.last_user(4).contains("no fenced C code block"));
    assert!(
        ran.server
            .last_user(5)
            .contains("cut off at the token limit")
    );
    for i in 0..6 {
        assert!(!ran.server.last_user(i).contains("root:"), "request {i}");
    }
    // The 10 MB answer stays out of the conversation.
    let sent: usize = ran.server.messages(5).iter().map(|(_, c)| c.len()).sum();
    assert!(sent < 200_000, "{sent} bytes sent in round 6");
}

#[test]
fn server_errors_are_retried_within_a_round_honouring_retry_after() {
    let ran = run(Scenario {
        script: vec![
            Reply::status(500, &[]),
            Reply::status(429, &[("retry-after", "2")]),
            Reply::c(&right()),
        ],
        args: &[],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert_eq!(ran.outcomes(), ["accepted"]);
    assert_eq!(ran.server.requests().len(), 3);
    // 0.5 s of backoff after the 500, then the 2 s the server asked for.
    assert!(
        ran.elapsed >= Duration::from_millis(2500),
        "{:?}",
        ran.elapsed
    );
}

#[test]
fn a_server_that_never_answers_times_out_and_falls_back() {
    let ran = run(Scenario {
        script: vec![Reply::Silence],
        args: &["--llm-timeout", "2"],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert_eq!(ran.outcomes(), ["http_error"]);
    assert!(
        ran.stdout().contains("rules (fallback)"),
        "{}",
        ran.stdout()
    );
    assert!(
        ran.stderr().contains("did not answer within"),
        "{}",
        ran.stderr()
    );
    // The bound: the request timeout once (a timeout is not retried: it would take as long
    // again), plus the rules backend's build.
    assert!(ran.elapsed < Duration::from_secs(60), "{:?}", ran.elapsed);
    assert_eq!(ran.server.requests().len(), 1);
}

#[test]
fn all_rounds_wrong_falls_back_to_the_rules_backend_and_says_so() {
    let ran = run(Scenario {
        script: vec![Reply::c(&modulo_biased()); 3],
        args: &[],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    assert_eq!(ran.outcomes(), ["not_equivalent"; 3]);
    assert!(
        ran.stdout().contains("rules (fallback)"),
        "{}",
        ran.stdout()
    );
    assert!(
        ran.stderr().contains("rules backend's program is kept"),
        "{}",
        ran.stderr()
    );
    let report = ran.report();
    assert_eq!(report["backend"]["kind"], "rules");
    assert_eq!(report["backend"]["fallback"], true);
    assert_eq!(report["backend"]["lock"], "none");
    assert!(!ran.lock().exists(), "a fallback writes no lock");
}

#[test]
fn fallback_none_writes_nothing() {
    let ran = run(Scenario {
        script: vec![Reply::c(&modulo_biased()); 2],
        args: &["--fallback", "none", "--rounds", "2"],
    });
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr());
    assert!(!ran.out().exists());
    assert!(!ran.lock().exists());
    assert!(ran.stderr().contains("--fallback none"), "{}", ran.stderr());
    assert!(ran.stderr().contains("not_equivalent"), "{}", ran.stderr());
}

#[test]
fn fallback_none_ending_unknown_exits_3() {
    // A right answer, but a solver budget too small to decide anything: "unknown".
    let ran = run(Scenario {
        script: vec![Reply::c(&right())],
        args: &["--fallback", "none", "--rounds", "1", "--budget", "1000"],
    });
    assert_eq!(ran.code(), Some(3), "{}", ran.stderr());
    assert!(!ran.out().exists());
    assert!(!ran.lock().exists());
    assert!(ran.stderr().contains("unknown"), "{}", ran.stderr());
}

#[test]
fn the_lockfile_round_trip() {
    let ran = run(Scenario {
        script: vec![Reply::c(&right())],
        args: &[],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    let object = std::fs::read(ran.out().join("fault.bpf.o")).unwrap();
    let lock: Json = serde_json::from_str(&std::fs::read_to_string(ran.lock()).unwrap()).unwrap();
    assert_eq!(lock["model"], "scripted");
    assert_eq!(lock["c"], right());
    let url = ran.server.url.clone();
    ran.server.stop();
    let dir = ran.dir.path();

    // The server is gone; --locked rebuilds the same bytes without asking it.
    let locked = |out: &str| {
        simplebpf(
            &[
                "build",
                "fault.appnet",
                "-o",
                out,
                "--backend",
                "llm",
                "--locked",
                "--llm-url",
                &url,
                "--llm-model",
                "scripted",
            ],
            dir,
        )
    };
    let again = locked("again");
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("llm (lock)"));
    assert_eq!(
        std::fs::read(dir.join("again/fault.bpf.o")).unwrap(),
        object
    );
    // Without --locked, a fresh lock is used too (the server is not asked: it is gone).
    let used = simplebpf(
        &[
            "build",
            "fault.appnet",
            "-o",
            "used",
            "--backend",
            "llm",
            "--llm-url",
            &url,
            "--llm-model",
            "m",
        ],
        dir,
    );
    assert_eq!(
        used.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&used.stderr)
    );

    // A lock edited into a wrong program is refused with the counterexample.
    let mut edited = lock.clone();
    edited["c"] = Json::String(modulo_biased());
    std::fs::write(ran.lock(), serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let refused = locked("refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fault.appnet.lock"), "{stderr}");
    assert!(stderr.contains("counterexample"), "{stderr}");
    assert!(!dir.join("refused").exists());

    // A stale lock (the policy changed) and a missing one: --locked fails and says why.
    std::fs::write(ran.lock(), serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    let policy = std::fs::read_to_string(ran.policy()).unwrap();
    std::fs::write(ran.policy(), format!("{policy}\n# edited\n")).unwrap();
    let stale = locked("stale");
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert_eq!(stale.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("stale") && stderr.contains("policy changed"),
        "{stderr}"
    );
    std::fs::remove_file(ran.lock()).unwrap();
    let missing = locked("missing");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no lockfile"), "{stderr}");
}

#[test]
fn update_lock_asks_the_model_again() {
    let ran = run(Scenario {
        script: vec![Reply::c(&right()), Reply::c(&right())],
        args: &[],
    });
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr());
    let again = simplebpf(
        &[
            "build",
            "fault.appnet",
            "-o",
            "out",
            "--backend",
            "llm",
            "--update-lock",
            "--llm-url",
            &ran.server.url,
            "--llm-model",
            "scripted",
        ],
        ran.dir.path(),
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(ran.server.requests().len(), 2);
}

#[test]
fn the_backend_needs_a_url_and_a_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::root().join("examples/fault.appnet"),
        dir.path().join("fault.appnet"),
    )
    .unwrap();
    let output = simplebpf(&["build", "fault.appnet", "--backend", "llm"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--llm-url"), "{stderr}");
    assert!(!dir.path().join("fault.bpf.o").exists());
}
