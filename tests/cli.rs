//! The command line as a user drives it: exit codes, text and JSON output, no files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn simplebpf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simplebpf"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

#[test]
fn lint_accepts_every_example_and_says_what_it_checked() {
    let mut args = vec!["lint".to_string()];
    for dir in [root().join("examples"), root().join("examples/bench")] {
        args.extend(
            list(&dir)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "appnet"))
                .map(|p| p.display().to_string()),
        );
    }
    assert!(args.len() >= 8);
    let policies = args.len() - 1;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = simplebpf(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!("lint: {policies} policies, 0 errors, 0 warnings\n")
    );
    assert_eq!(stdout(&output), "");
}

/// Each malformed input: exit 1 when it has an error (0 when only warnings), a coded
/// diagnostic naming the file, never a panic, and no file written next to it.
#[test]
fn lint_rejects_malformed_inputs_without_panicking_or_writing() {
    let dir = tempfile::tempdir().unwrap();
    let sources = list(&root().join("dsl/tests/malformed"));
    assert!(sources.len() >= 20);
    for source in &sources {
        std::fs::copy(source, dir.path().join(source.file_name().unwrap())).unwrap();
    }
    let before = list(dir.path());
    for path in &before {
        let output = simplebpf(&["lint", &path.display().to_string()]);
        let text = stderr(&output);
        let has_error = text.contains("Error: [E");
        let expected = if has_error { 1 } else { 0 };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{}: {text}",
            path.display()
        );
        assert!(
            text.contains("[E") || text.contains("[W"),
            "{}: no diagnostic",
            path.display()
        );
        assert!(text.contains(&*path.file_name().unwrap().to_string_lossy()));
        assert!(!text.contains("panicked"), "{text}");
    }
    assert_eq!(list(dir.path()), before, "lint wrote files");
    let errors = before
        .iter()
        .filter(|p| simplebpf(&["lint", &p.display().to_string()]).status.code() == Some(1))
        .count();
    assert!(errors >= 20, "only {errors} malformed inputs are errors");
}

#[test]
fn lint_json_gives_one_object_per_diagnostic() {
    let path = root().join("dsl/tests/malformed/unknown_function.appnet");
    let output = simplebpf(&["lint", "--format", "json", &path.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1],
        serde_json::json!({ "summary": { "policies": 1, "errors": 1, "warnings": 0 } })
    );
    let d = &lines[0];
    assert_eq!(d["code"], "E0402");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["message"], "unknown function `randomu`");
    assert_eq!(d["span"]["start"]["line"], 8);
    assert_eq!(d["span"]["start"]["column"], 6);
    assert_eq!(d["help"], "did you mean `randomf`?");
    assert!(
        d["file"]
            .as_str()
            .unwrap()
            .ends_with("unknown_function.appnet")
    );
}

#[test]
fn lint_of_a_missing_file_is_a_usage_error() {
    let output = simplebpf(&["lint", "/nonexistent/policy.appnet"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read /nonexistent/policy.appnet"));
    let output = simplebpf(&["lint"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn run_decides_fault_injection_at_the_exact_threshold() {
    let fault = example("fault.appnet");
    let run = |draw: &str| {
        let output = simplebpf(&[
            "run",
            &fault,
            "--payload-len",
            "64",
            "--draws",
            draw,
            "--time",
            "1000",
            "--format",
            "json",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        serde_json::from_str::<serde_json::Value>(&stdout(&output)).unwrap()
    };
    assert_eq!(run("4080218931")["action"], "forward");
    let rejected = run("4080218932");
    assert_eq!(rejected["action"], "reject");
    assert_eq!(rejected["reason"], "fault_injected");
    assert_eq!(rejected["draws_used"], 1);
    assert_eq!(rejected["state"]["prob"], "0.95");
}

#[test]
fn run_prints_state_after_one_request() {
    let output = simplebpf(&[
        "run",
        &example("bench/logging.appnet"),
        "--payload-len",
        "100",
        "--time",
        "5",
        "--state",
        "req_count=41",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "action: forward\ndraws used: 0\nstate:\n  req_count = 42\n  total_bytes = 100\n"
    );
}

#[test]
fn run_reports_bad_inputs_as_usage_errors() {
    let logging = example("bench/logging.appnet");
    let base = ["run", &logging, "--payload-len", "1", "--time", "5"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        simplebpf(&args)
    };
    let output = with(&["--state", "nope=1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no state variable `nope`"));
    let output = with(&["--state", "req_count=1.5"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a valid int"));
    let output = simplebpf(&[
        "run",
        &example("fault.appnet"),
        "--payload-len",
        "1",
        "--time",
        "5",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("random draws"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_refuses_what_needs_a_wire_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firewall.appnet");
    std::fs::write(
        &path,
        "state:\n\tacl: Map<string, string>\n\ninit():\n\tpass\n\nreq(rpc):\n\tmatch get(acl, get(rpc, 'body')):\n\t\tSome(p) =>\n\t\t\tsend(err('no'), Up)\n\t\tNone =>\n\t\t\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    )
    .unwrap();
    let path = path.display().to_string();
    assert_eq!(simplebpf(&["lint", &path]).status.code(), Some(0));
    let output = simplebpf(&["run", &path, "--payload-len", "1", "--time", "5"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[E0507] get(rpc, 'body') needs a wire schema"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in ["lint", "run"] {
        let output = simplebpf(&[sub, "--help"]);
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout(&output).contains("Example:"), "{sub}");
    }
}

#[test]
fn every_subcommand_help_lists_its_exit_status() {
    for sub in ["lint", "run", "build", "stats", "check"] {
        let output = simplebpf(&[sub, "--help"]);
        assert_eq!(output.status.code(), Some(0));
        let help = stdout(&output);
        assert!(help.contains("Exit status: 0 "), "{sub}: {help}");
        assert!(help.contains("130/143 interrupted"), "{sub}: {help}");
        assert!(
            help.contains("Example:") || help.contains("Examples:"),
            "{sub}"
        );
    }
}

#[test]
fn a_byte_order_mark_is_accepted_and_an_invisible_character_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(example("fault.appnet")).unwrap();
    let with_bom = dir.path().join("bom.appnet");
    std::fs::write(&with_bom, format!("\u{FEFF}{source}")).unwrap();
    let output = simplebpf(&["lint", with_bom.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let inside = dir.path().join("inside.appnet");
    std::fs::write(
        &inside,
        source.replacen("prob = 0.95", "prob =\u{FEFF} 0.95", 1),
    )
    .unwrap();
    let output = simplebpf(&["lint", "--color", "never", inside.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[E0002] unexpected character U+FEFF"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn numeric_flags_are_checked_for_range() {
    let fault = example("fault.appnet");
    for (args, expected) in [
        (
            vec!["build", &fault, "--port", "0"],
            "invalid value '0' for '--port <N>': 0 is not in 1..=65535",
        ),
        (
            vec!["check", &fault, &fault, "--port", "70000"],
            "invalid value '70000' for '--port <N>'",
        ),
        (
            vec![
                "run",
                &fault,
                "--payload-len",
                "18446744073709551615",
                "--time",
                "0",
            ],
            "invalid value '18446744073709551615' for '--payload-len <N>': 18446744073709551615 is not in 0..=65527",
        ),
        (
            vec!["build", &fault, "--timeout-ms", "0"],
            "invalid value '0' for '--timeout-ms <N>'",
        ),
    ] {
        let output = simplebpf(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let path = root().join("dsl/tests/malformed/unknown_function.appnet");
    let path = path.to_str().unwrap();
    let coloured = |args: &[&str], no_color: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simplebpf"));
        command.args(args).env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().unwrap();
        stderr(&output).contains('\u{1b}')
    };
    assert!(coloured(&["lint", "--color", "always", path], None));
    assert!(coloured(&["--color", "always", "lint", path], Some("1")));
    assert!(!coloured(&["lint", "--color", "never", path], None));
    // Not a terminal: `auto` gives none, and neither does NO_COLOR.
    assert!(!coloured(&["lint", path], None));
    assert!(!coloured(&["lint", path], Some("1")));
}

#[test]
fn a_bad_output_directory_is_named_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    // No compiler on PATH: the -o problem must be found before clang is needed.
    let empty = tempfile::tempdir().unwrap();
    for (out, expected) in [
        (
            file.clone(),
            format!(
                "error: the output path {} is not a directory",
                file.display()
            ),
        ),
        (
            file.join("sub"),
            format!(
                "error: cannot create the output directory {}: {} is not a directory",
                file.join("sub").display(),
                file.display()
            ),
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_simplebpf"))
            .args(["build", &example("fault.appnet"), "-o"])
            .arg(&out)
            .env("PATH", empty.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(stderr(&output).trim_end(), expected);
    }
}

#[test]
fn clang_s_messages_cite_the_user_s_file() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("mine.c");
    std::fs::write(
        &program,
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\nSEC(\"xdp\")\nint p(struct xdp_md *ctx) { return XDP_PAS; }\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_simplebpf"))
        .args(["check", &example("fault.appnet"), "mine.c"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.starts_with("error: cannot compile mine.c: "), "{text}");
    assert!(
        text.contains("mine.c:5:36: error: use of undeclared identifier 'XDP_PAS'"),
        "{text}"
    );
    assert!(!text.contains("/tmp"), "{text}");
}
