//! `build` and `stats` against the real kernel: every example is accepted by the verifier,
//! a corrupted program is rejected with the verifier's log, counts match bpftool's, and no
//! update is lost under concurrent load.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value as Json;
use simplebpf::pipeline::{self, BuildError, BuildOptions};
use simplebpf_compiler::backend;
use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_compiler::kernel;
use simplebpf_compiler::measure;
use simplebpf_compiler::state_io;
use simplebpf_dsl::interp::{self, Value};
use simplebpf_optimizer::Rejection;

fn simplebpf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simplebpf"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn json_line(output: &Output) -> Json {
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn every_example_builds_and_the_kernel_verifier_accepts_it() {
    for (name, path) in common::examples() {
        let out = tempfile::tempdir().unwrap();
        let output = simplebpf(&[
            "build",
            path.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json_line(&output);
        for file in [".bpf.c", ".bpf.o", ".report.json"] {
            assert!(
                out.path().join(format!("{name}{file}")).is_file(),
                "{name}{file} missing"
            );
        }
        let on_disk: Json = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("{name}.report.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            on_disk, report,
            "{name}: the printed and written reports differ"
        );
        assert!(report["insns"]["elf"].as_u64().unwrap() > 0);
        if report["kernel"]["used"] == Json::Bool(false) {
            assert!(
                !kernel::kernel_required(),
                "{name}: the kernel was required: {report}"
            );
            eprintln!(
                "{name}: kernel not used: {}",
                report["kernel"]["skipped_because"]
            );
            continue;
        }
        assert_eq!(report["verifier"]["accepted"], Json::Bool(true), "{name}");
        let xlated = report["insns"]["xlated"].as_u64().unwrap();
        let jited = report["insns"]["jited"].as_u64().unwrap();
        let ns = report["runtime_ns_per_packet"].as_f64().unwrap();
        assert!(xlated > 0 && jited > 0 && ns > 0.0, "{name}: {report}");
        // The optimizer ran, kept a proven program, and never a costlier one.
        let optimizer = &report["optimizer"];
        assert_eq!(optimizer["ran"], true, "{name}: {optimizer}");
        assert_eq!(optimizer["objective"], "jited", "{name}");
        assert_eq!(optimizer["after"]["jited"], jited, "{name}");
        let before = optimizer["before"]["jited"].as_u64().unwrap();
        assert!(jited <= before, "{name}: {before} → {jited}");
        assert_eq!(report["checker"]["verdict"], "equivalent", "{name}");
        let candidates = optimizer["candidates"].as_u64().unwrap();
        assert!(candidates >= 4, "{name}: {optimizer}");
        eprintln!(
            "{name}: ELF {} xlated {xlated} JIT {before} → {jited} {ns} ns/packet ({})",
            report["insns"]["elf"], optimizer["winner"]
        );
    }
}

#[test]
fn no_optimize_writes_the_first_program_the_optimizer_starts_from() {
    let path = common::root().join("examples/fault.appnet");
    let build = |extra: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec![
            "build",
            path.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let output = simplebpf(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let c = std::fs::read_to_string(out.path().join("fault.bpf.c")).unwrap();
        (json_line(&output), c)
    };
    let (first, first_c) = build(&["--no-optimize"]);
    let (optimized, optimized_c) = build(&[]);
    assert_eq!(first["optimizer"]["ran"], false);
    assert_eq!(first["optimizer"]["because"], "--no-optimize");
    assert!(first_c.contains("struct iphdr"), "the per-field filter");
    assert!(optimized_c.contains("0x08004500"), "the fused filter");
    assert_eq!(
        optimized["optimizer"]["before"]["elf"],
        first["insns"]["elf"]
    );
    if first["kernel"]["used"] == true {
        assert_eq!(
            optimized["optimizer"]["before"]["jited"],
            first["insns"]["jited"]
        );
        let before = first["insns"]["jited"].as_u64().unwrap();
        let after = optimized["insns"]["jited"].as_u64().unwrap();
        assert!(after < before, "{before} → {after}");
    }
}

#[test]
fn the_shipped_object_never_contains_the_test_hooks() {
    for (name, path) in common::examples() {
        let shipped = common::compile(&name, &path, false);
        assert!(!shipped.emitted.c_source.contains("sb_test"), "{name}");
        assert!(shipped.object.global("sb_test_draws").is_none(), "{name}");
        let test = common::compile(&name, &path, true);
        assert!(test.object.global("sb_test_draws").is_some(), "{name}");
    }
}

#[test]
fn a_program_the_verifier_rejects_gives_its_log_and_no_files() {
    let path = common::root().join("examples/bench/logging.appnet");
    let program = common::program(&path);
    let mut emitted = backend::emit(
        &program,
        &backend::Options {
            port: common::PORT,
            name: "logging".to_string(),
            test_hooks: false,
            strategy: Default::default(),
        },
    )
    .unwrap();
    // Drop the bounds check before the UDP header is read.
    let check = "\tif ((void *)(udp + 1) > data_end)\n\t\treturn 0;\n";
    assert!(emitted.c_source.contains(check));
    emitted.c_source = emitted.c_source.replace(check, "");
    let out = tempfile::tempdir().unwrap();
    match pipeline::build_emitted("logging", &program, emitted, &BuildOptions::default()) {
        Err(BuildError::Rejected(Rejection::Verifier { log })) => {
            assert!(
                log.contains("invalid access to packet"),
                "unexpected log:\n{log}"
            );
        }
        Err(BuildError::Rejected(Rejection::Kernel(err)))
            if err.is_missing_capability() && !kernel::kernel_required() =>
        {
            eprintln!("skipping: {err}");
        }
        other => panic!(
            "expected a verifier rejection, got {:?}",
            other.map(|b| b.report)
        ),
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn a_policy_with_errors_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let policy = out.path().join("bad.appnet");
    std::fs::write(&policy, "state:\n\tx: int\n\ninit():\n\tx = 1.5\n\nreq(rpc):\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n").unwrap();
    let target = out.path().join("out");
    let output = simplebpf(&[
        "build",
        policy.to_str().unwrap(),
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!target.exists());
}

#[test]
fn an_effectful_resp_is_refused_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("count_resp.appnet");
    std::fs::write(&policy, "state:\n\tn: int\n\ninit():\n\tpass\n\nreq(rpc):\n\tsend(rpc, Down)\n\nresp(rpc):\n\tn = n + 1\n\tsend(rpc, Up)\n").unwrap();
    let output = simplebpf(&[
        "build",
        policy.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
        "--no-kernel",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("E0601") && stderr.contains("egress hook"),
        "{stderr}"
    );
    assert!(!dir.path().join("count_resp.bpf.o").exists());
}

#[test]
fn no_kernel_builds_report_static_numbers_only() {
    let out = tempfile::tempdir().unwrap();
    let path = common::root().join("examples/fault.appnet");
    let output = simplebpf(&[
        "build",
        path.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "--no-kernel",
        "--format",
        "json",
    ]);
    assert!(output.status.success());
    let report = json_line(&output);
    assert!(report["insns"]["elf"].as_u64().unwrap() > 0);
    assert_eq!(report["insns"]["xlated"], Json::Null);
    assert_eq!(report["kernel"]["used"], Json::Bool(false));
}

fn bpftool_sizes(object: &Path) -> Option<(u64, u64)> {
    let pin = format!("/sys/fs/bpf/simplebpf_stats_test_{}", std::process::id());
    let load = Command::new("bpftool")
        .args([
            "prog",
            "load",
            object.to_str().unwrap(),
            &pin,
            "type",
            "xdp",
        ])
        .output()
        .expect("bpftool runs (scripts/setup installs it)");
    if !load.status.success() {
        assert!(
            !kernel::kernel_required(),
            "bpftool could not load: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        return None;
    }
    let show = Command::new("bpftool")
        .args(["prog", "show", "pinned", &pin, "--json"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&pin);
    let info: Json = serde_json::from_slice(&show.stdout).unwrap();
    Some((
        info["bytes_xlated"].as_u64().unwrap(),
        info["bytes_jited"].as_u64().unwrap(),
    ))
}

/// `stats` reports what `bpftool prog show` reports, for a hand-written object and for a
/// libbpf-style one whose state and `bpf_spin_lock` sit in a custom `.data.rl` section.
#[test]
fn stats_of_hand_written_objects_match_bpftool() {
    for source in [
        "tests/xdp/handwritten_logging.c",
        "tests/foreign/ratelimit/clamp_first_private_lock.c",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(common::root().join(source)).unwrap();
        let elf = clang::compile(&text, dir.path(), &ClangOptions::default()).unwrap();
        let object = dir.path().join("program.o");
        std::fs::write(&object, elf).unwrap();

        let output = simplebpf(&["stats", object.to_str().unwrap(), "--format", "json"]);
        assert!(
            output.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stats = json_line(&output);
        let Some((xlated, jited)) = bpftool_sizes(&object) else {
            return;
        };
        assert_eq!(
            stats["bytes"]["xlated"].as_u64(),
            Some(xlated),
            "{source}: {stats}"
        );
        assert_eq!(
            stats["bytes"]["jited"].as_u64(),
            Some(jited),
            "{source}: {stats}"
        );
        assert_eq!(stats["insns"]["xlated"].as_u64(), Some(xlated / 8));
        eprintln!("{source}: stats {stats}\nbpftool: xlated {xlated} B, jited {jited} B");
    }
}

#[test]
fn stats_shows_the_verifier_log_of_an_object_it_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        std::fs::read_to_string(common::root().join("tests/xdp/rejected_unchecked_read.c"))
            .unwrap();
    let elf = clang::compile(&source, dir.path(), &ClangOptions::default()).unwrap();
    let object = dir.path().join("rejected.o");
    std::fs::write(&object, elf).unwrap();
    let output = simplebpf(&["stats", object.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(0) {
        assert!(
            !kernel::kernel_required() && stderr.contains("not allowed"),
            "{stderr}"
        );
        return;
    }
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("verifier rejected") && stderr.contains("--- verifier log"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid access to packet"), "{stderr}");
}

/// Runs the program on `threads` CPUs at once, `repeat` times each.
fn hammer(loaded: &kernel::LoadedProgram, packet: &[u8], threads: usize, repeat: u32) {
    std::thread::scope(|scope| {
        for cpu in 0..threads {
            scope.spawn(move || {
                pin_to_cpu(cpu);
                let (action, _) = loaded.test_run(packet, repeat).unwrap();
                assert!(action == 1 || action == 2);
            });
        }
    });
}

fn pin_to_cpu(cpu: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and sched_setaffinity only read
    // and write that local set.
    #[allow(unsafe_code)]
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cpus, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[test]
fn no_update_is_lost_under_concurrent_load() {
    const REPEAT: u32 = 1_000_000;
    let path = common::root().join("examples/bench/logging.appnet");
    let compiled = common::compile("logging", &path, false);
    let Some(loaded) = common::load_or_skip(&compiled.elf, "logging") else {
        return;
    };
    let payload = 100;
    let packet = measure::rpc_packet_ipv4(common::PORT, payload);
    hammer(&loaded, &packet, 2, REPEAT);
    let state = state_io::read_state(&loaded, &compiled.contract).unwrap();
    assert_eq!(state.vars["req_count"], Value::Int(2 * i64::from(REPEAT)));
    assert_eq!(
        state.vars["total_bytes"],
        Value::Int(2 * i64::from(REPEAT) * payload as i64)
    );
}

#[test]
fn the_token_bucket_stays_within_its_bounds_under_concurrent_load() {
    const REPEAT: u32 = 1_000_000;
    let path = common::root().join("examples/ratelimit.appnet");
    let compiled = common::compile("ratelimit", &path, false);
    let Some(loaded) = common::load_or_skip(&compiled.elf, "ratelimit") else {
        return;
    };
    let contract = &compiled.contract;
    let initial = interp::load(&compiled.program, &[], common::now_ns()).unwrap();
    state_io::write_state(&loaded, contract, &initial.state).unwrap();
    let limit = match &initial.state.vars["limit"] {
        Value::Float(limit) => limit.clone(),
        other => panic!("limit is {other}"),
    };
    let zero = num_rational::BigRational::from_integer(0.into());
    let packet = measure::rpc_packet_ipv4(common::PORT, 10);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut samples = 0;
    std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            hammer(&loaded, &packet, 2, REPEAT);
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // Sample the stored tokens while both CPUs run the program.
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let state = state_io::read_state(&loaded, contract).unwrap();
            let Value::Float(tokens) = &state.vars["tokens"] else {
                panic!("tokens is not a float");
            };
            assert!(
                *tokens <= limit && *tokens >= zero,
                "tokens {tokens} outside [0, {limit}]"
            );
            samples += 1;
        }
        runner.join().unwrap();
    });
    let state = state_io::read_state(&loaded, contract).unwrap();
    let Value::Float(tokens) = &state.vars["tokens"] else {
        panic!("tokens is not a float");
    };
    assert!(*tokens <= limit && *tokens >= zero, "final tokens {tokens}");
    assert!(samples > 0);
    eprintln!("token bucket: {samples} samples within [0, {limit}], final {tokens}");
}

/// Without the capability to load programs, `build` says so in one line and reports static
/// numbers; `SIMPLEBPF_REQUIRE_KERNEL=1` turns that into an error. Runs the binary as
/// `nobody` through `setpriv`, so it needs root itself.
#[test]
fn without_the_capability_build_says_so_and_continues_unless_required() {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            !kernel::kernel_required(),
            "this test must run as root under SIMPLEBPF_REQUIRE_KERNEL=1"
        );
        return;
    }
    // What `nobody` runs is staged where it can read and run it: the checkout itself may
    // sit in a directory only its owner can enter (a 0700 home, a fresh `mktemp -d`).
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("simplebpf-nobody-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o777)).unwrap();
    let binary = dir.path().join("simplebpf");
    std::fs::copy(env!("CARGO_BIN_EXE_simplebpf"), &binary).unwrap();
    std::fs::set_permissions(&binary, PermissionsExt::from_mode(0o755)).unwrap();
    let policy = dir.path().join("fault.appnet");
    std::fs::copy(common::root().join("examples/fault.appnet"), &policy).unwrap();
    std::fs::set_permissions(&policy, PermissionsExt::from_mode(0o644)).unwrap();
    let run = |require: bool, out: &str| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary)
            .args(["build", policy.to_str().unwrap(), "-o"])
            .arg(dir.path().join(out))
            .current_dir(dir.path())
            .env("TMPDIR", dir.path());
        command.env_remove(kernel::REQUIRE_KERNEL_ENV);
        if require {
            command.env(kernel::REQUIRE_KERNEL_ENV, "1");
        }
        command.output().expect("setpriv runs")
    };
    let relaxed = run(false, "relaxed");
    assert_eq!(
        relaxed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&relaxed.stderr)
    );
    let stderr = String::from_utf8_lossy(&relaxed.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not allowed to load BPF programs"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&relaxed.stdout).contains("not run"));
    assert!(dir.path().join("relaxed/fault.bpf.o").is_file());

    let strict = run(true, "strict");
    assert_eq!(strict.status.code(), Some(2));
    assert!(!dir.path().join("strict").exists());
}

#[test]
fn bench_prints_before_and_after_for_each_policy_and_the_papers_numbers() {
    let root = common::root();
    let logging = root.join("examples/bench/logging.appnet");
    let fault = root.join("examples/fault.appnet");
    let policies = [logging.to_str().unwrap(), fault.to_str().unwrap()];
    let output = simplebpf(&["bench", policies[0], policies[1], "--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = json_line(&output);
    let rows = table["policies"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["policy"], "logging");
    assert_eq!(rows[0]["paper"]["llm_optimized"]["jited"], 67);
    assert_eq!(rows[1]["paper"], Json::Null);
    for row in rows {
        assert_eq!(row["proven"], true, "{row}");
        let (before, after) = (&row["before"], &row["after"]);
        assert!(after["elf"].as_u64() <= before["elf"].as_u64(), "{row}");
        if let (Some(before), Some(after)) = (before["jited"].as_u64(), after["jited"].as_u64()) {
            assert!(after < before, "{row}");
        } else {
            assert!(!kernel::kernel_required(), "the kernel was required: {row}");
        }
        assert!(row["build_ms"].as_u64().unwrap() > 0);
    }
    let markdown = simplebpf(&["bench", policies[1]]);
    let text = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        text.starts_with("| policy | ELF | xlated | JIT |"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|line| line.starts_with("| fault |"))
        .expect("a row for fault");
    assert!(row.matches(" → ").count() >= 2, "before → after: {row}");
}
