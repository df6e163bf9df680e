//! The command line under hostile conditions: planted symlinks, concurrent builds into one
//! directory, signals in the middle of the work, inputs that never end, objects that are
//! not what they seem, and the same build in two places.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use simplebpf::outputs::sha256_hex;

fn simplebpf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simplebpf"));
    command.env_remove("RUST_BACKTRACE");
    command
}

fn run(args: &[&str]) -> Output {
    simplebpf().args(args).output().expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn example(name: &str) -> String {
    common::root()
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// `build` of an example into `out` without the kernel; it must succeed.
fn build_example(name: &str, out: &Path, extra: &[&str]) -> Output {
    let output = simplebpf()
        .args(["build", &example(name), "-o"])
        .arg(out)
        .arg("--no-kernel")
        .args(extra)
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    output
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_planted_symlink_is_replaced_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "do not touch").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let names = [
        "fault.bpf.c",
        "fault.bpf.o",
        "fault.report.json",
        "fault.bpf.c.tmp",
        "fault.bpf.o.tmp",
        "fault.report.json.tmp",
    ];
    for name in names {
        std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
    }
    build_example("fault.appnet", &out, &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "do not touch");
    for name in &names[..3] {
        let metadata = std::fs::symlink_metadata(out.join(name)).unwrap();
        assert!(metadata.is_file(), "{name} is not a regular file");
    }
    // The old fixed temporary names were never used: they are still the planted links.
    for name in &names[3..] {
        assert!(
            std::fs::symlink_metadata(out.join(name))
                .unwrap()
                .is_symlink()
        );
    }
    assert_eq!(entries(&out).len(), names.len(), "{:?}", entries(&out));
}

#[test]
fn concurrent_builds_into_one_directory_leave_one_build_s_files() {
    const BUILDS: u16 = 8;
    const ROUNDS: usize = 4;
    let policy = common::root().join("examples/bench/logging_fault.appnet");
    let out = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let children: Vec<Child> = (0..BUILDS)
            .map(|i| {
                simplebpf()
                    .args(["build", policy.to_str().unwrap(), "-o"])
                    .arg(out.path())
                    .args(["--no-kernel", "--port", &(9001 + i).to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        }
        assert_eq!(
            entries(out.path()),
            [
                "logging_fault.bpf.c",
                "logging_fault.bpf.o",
                "logging_fault.report.json"
            ],
            "round {round}: stray files"
        );
        let read = |name: &str| std::fs::read(out.path().join(name)).unwrap();
        let report: Json = serde_json::from_slice(&read("logging_fault.report.json")).unwrap();
        let c = read("logging_fault.bpf.c");
        let object = read("logging_fault.bpf.o");
        assert_eq!(
            report["outputs"]["c_sha256"],
            sha256_hex(&c),
            "round {round}"
        );
        assert_eq!(
            report["outputs"]["object_sha256"],
            sha256_hex(&object),
            "round {round}"
        );
        let port = report["port"].as_u64().unwrap().to_string();
        assert!(
            String::from_utf8_lossy(&c).contains(&format!("#define SERVICE_PORT {port}")),
            "round {round}: the C is not for port {port}"
        );
        let check = run(&[
            "check",
            policy.to_str().unwrap(),
            out.path().join("logging_fault.bpf.o").to_str().unwrap(),
            "--port",
            &port,
        ]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "round {round}: {}",
            text(&check)
        );
        eprintln!("round {round}: one build's files (port {port}), proven at that port");
    }
}

/// The processes whose parent is `pid`, by name.
fn children_of(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (name) state ppid ...": the name may hold spaces, so split after ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("", |(_, n)| n);
        let ppid: Option<u32> = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            names.push(name.to_string());
        }
    }
    names
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Interrupted {
    status: Option<i32>,
    stderr: String,
    exit_after_signal: Duration,
}

/// Starts `build` of `policy` into `out` with its own TMPDIR, waits until `ready` says the
/// work is where the signal should land, sends `signal`, and collects what happened.
fn interrupt_build(
    policy: &Path,
    out: &Path,
    tmp: &Path,
    signal: &str,
    mut ready: impl FnMut(u32) -> bool,
) -> Interrupted {
    let child = simplebpf()
        .args(["build", policy.to_str().unwrap(), "-o"])
        .arg(out)
        .args(["--no-kernel", "--timeout-ms", "600000"])
        .env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the work to start", Duration::from_secs(120), || ready(pid));
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = Instant::now();
    let output = child.wait_with_output().unwrap();
    Interrupted {
        status: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        exit_after_signal: sent.elapsed(),
    }
}

#[test]
fn a_signal_during_clang_or_a_proof_stops_the_build_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    // 10 000 counters keep clang busy for seconds.
    let big = dir.path().join("big.appnet");
    std::fs::write(&big, common::fixtures::counters_policy(10_000)).unwrap();
    let out = dir.path().join("out-clang");
    let during_clang = interrupt_build(&big, &out, &tmp, "-INT", |pid| {
        children_of(pid)
            .iter()
            .any(|name| name.starts_with("clang"))
    });
    eprintln!(
        "SIGINT during clang: exit {:?} after {:?}",
        during_clang.status, during_clang.exit_after_signal
    );
    assert_eq!(during_clang.status, Some(130), "{}", during_clang.stderr);
    assert_eq!(during_clang.stderr.trim(), "interrupted");
    assert!(during_clang.exit_after_signal < Duration::from_secs(3));

    // A 64-bit signed division by a state variable keeps the solver busy once clang is done
    // (the program divides magnitudes and fixes the sign; proving that equal to the policy's
    // division takes the solver minutes).
    let divide = dir.path().join("divide.appnet");
    std::fs::write(
        &divide,
        "state:\n\tq: int\n\td: int\n\ninit():\n\tq = 1000\n\nreq(rpc):\n\tq = q / d\n\td = d + 1\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
    )
    .unwrap();
    for (signal, status) in [("-INT", 130), ("-TERM", 143)] {
        let out = dir.path().join(format!("out-proof{signal}"));
        let mut clang_seen = false;
        let during_proof = interrupt_build(&divide, &out, &tmp, signal, |pid| {
            let clang_now = children_of(pid).iter().any(|n| n.starts_with("clang"));
            clang_seen |= clang_now;
            let done = clang_seen && !clang_now;
            if done {
                std::thread::sleep(Duration::from_millis(500));
            }
            done
        });
        eprintln!(
            "{signal} during the proof: exit {:?} after {:?}",
            during_proof.status, during_proof.exit_after_signal
        );
        assert_eq!(during_proof.status, Some(status), "{}", during_proof.stderr);
        assert_eq!(during_proof.stderr.trim(), "interrupted");
        assert!(during_proof.exit_after_signal < Duration::from_secs(3));
        assert!(!out.exists(), "{signal}: {:?}", entries(&out));
    }
    assert!(!out.exists(), "{:?}", entries(&out));
    assert_eq!(entries(&tmp), Vec::<String>::new(), "temporaries left");
}

#[test]
fn lint_of_an_endless_input_stops_at_the_size_limit() {
    let started = Instant::now();
    let output = run(&["lint", "/dev/zero"]);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: /dev/zero is larger than 16777216 bytes; a policy file larger than that is refused\n"
    );
    eprintln!("lint /dev/zero: {elapsed:?}");
}

#[test]
fn the_same_policy_gives_the_same_bytes_wherever_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    for place in ["one", "two/deeper"] {
        let cwd = dir.path().join(place);
        std::fs::create_dir_all(&cwd).unwrap();
        let output = simplebpf()
            .args([
                "build",
                &example("ratelimit.appnet"),
                "-o",
                "out",
                "--no-kernel",
                // The budget is wall-clock time: on a loaded machine the default one can
                // stop the two searches at different variants (the report counts those).
                // Everything else must not vary, which is what this test is about.
                "--optimize-budget",
                "600",
            ])
            .current_dir(&cwd)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let read = |name: &str| std::fs::read(cwd.join("out").join(name)).unwrap();
        built.push((read("ratelimit.bpf.o"), read("ratelimit.bpf.c")));
    }
    assert!(built[0].0 == built[1].0, "the objects differ");
    assert!(built[0].1 == built[1].1, "the C differs");
}

#[test]
fn a_program_too_large_for_bpf_is_said_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.appnet");
    std::fs::write(&big, common::fixtures::counters_policy(10_000)).unwrap();
    let out = dir.path().join("out");
    let output = run(&[
        "build",
        big.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-kernel",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        format!(
            "error: cannot compile the program generated for {}: the program is too large for BPF: a jump spans more than 32767 instructions (clang: error in backend: Branch target out of insn range)\n",
            big.display()
        )
    );
    assert!(!out.exists());
}

/// The backend's fault program with a second XDP program beside it, or with its section
/// changed to a kprobe.
fn doctored_fault(dir: &Path, change: impl Fn(&str) -> String) -> PathBuf {
    let out = dir.join("fault-out");
    build_example("fault.appnet", &out, &[]);
    let c = std::fs::read_to_string(out.join("fault.bpf.c")).unwrap();
    let path = dir.join("doctored.c");
    std::fs::write(&path, change(&c)).unwrap();
    path
}

#[test]
fn check_and_stats_refuse_to_guess_which_program_is_meant() {
    let dir = tempfile::tempdir().unwrap();
    let policy = example("fault.appnet");
    let two = doctored_fault(dir.path(), |c| {
        c.replace(
            "char LICENSE[]",
            "SEC(\"xdp\")\nint drop_all(struct xdp_md *ctx)\n{\n\treturn XDP_DROP;\n}\n\nchar LICENSE[]",
        )
    });
    let two = two.to_str().unwrap();
    let output = run(&["check", &policy, two]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("several XDP programs (drop_all, fault_req); name one with --prog"),
        "{}",
        text(&output)
    );
    let output = run(&["check", &policy, two, "--prog", "fault_req"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = run(&["check", &policy, two, "--prog", "drop_all"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    let objects = tempfile::tempdir().unwrap();
    let object = objects.path().join("two.o");
    let elf = simplebpf_compiler::clang::compile(
        &std::fs::read_to_string(two).unwrap(),
        objects.path(),
        &Default::default(),
    )
    .unwrap();
    std::fs::write(&object, elf).unwrap();
    let output = run(&["stats", object.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("several XDP programs"));
    let output = run(&["stats", object.to_str().unwrap(), "--prog", "fault_req"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("fault_req"));

    let kprobe = doctored_fault(dir.path(), |c| {
        c.replace("SEC(\"xdp\")", "SEC(\"kprobe/do_nanosleep\")")
    });
    let output = run(&["check", &policy, kprobe.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("no XDP program (it has fault_req: not XDP)"),
        "{}",
        text(&output)
    );
}

#[test]
fn build_and_stats_name_the_program_alike() {
    let dir = tempfile::tempdir().unwrap();
    let output = build_example("fault.appnet", dir.path(), &["--format", "json"]);
    let report: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["program"], "fault_req");
    let build_table = build_example("fault.appnet", dir.path(), &[]);
    assert!(
        text(&build_table).contains("\nfault_req "),
        "{}",
        text(&build_table)
    );
    let stats = run(&[
        "stats",
        dir.path().join("fault.bpf.o").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let stats: Json = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["program"], "fault_req");
}
