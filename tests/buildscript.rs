//! `simplebpf::Builder` as a build script uses it: a fresh cargo project outside the
//! repository, with simplebpf as a build dependency without default features, built offline
//! by cargo; and the builder's failures, in process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use simplebpf::builder::rust_module::{self, Insns, ModuleSpec};
use simplebpf::pipeline::{self, BuildOptions};
use simplebpf::{Backend, BuildScriptError, Builder};
use simplebpf_optimizer::KernelUse;

const POLICY: &str = "policies/logging_fault.appnet";

/// The five-line build script of the README.
const BUILD_RS: &str = r#"fn main() {
    simplebpf::Builder::new("policies/logging_fault.appnet")
        .port(50051)
        .build()
        .unwrap();
}
"#;

const MAIN_RS: &str = r#"include!(concat!(env!("OUT_DIR"), "/logging_fault.rs"));

fn main() {
    println!("out_dir {}", env!("OUT_DIR"));
    println!("program {}", logging_fault::PROGRAM);
    println!("port {}", logging_fault::PORT);
    println!("object {}", logging_fault::OBJECT.len());
    println!("aligned {}", logging_fault::OBJECT.as_ptr() as usize % 8 == 0);
    println!("elf {} -> {}", logging_fault::INSNS_BEFORE.elf, logging_fault::INSNS_AFTER.elf);
    println!("prob {}", logging_fault::State::init(0).prob);
    println!("state {}", logging_fault::State::init(0));
}
"#;

struct Project {
    dir: tempfile::TempDir,
    target: PathBuf,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("simplebpf-buildscript-")
            .tempdir()
            .unwrap();
        let root = common::root();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("policies")).unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!(
                "[package]\nname = \"uses-simplebpf\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [build-dependencies]\nsimplebpf = {{ path = {:?}, default-features = false }}\n",
                root.display().to_string()
            ),
        )
        .unwrap();
        // The repository's versions, so that the build needs nothing it has not cached.
        std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
        std::fs::write(dir.path().join("build.rs"), BUILD_RS).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), MAIN_RS).unwrap();
        std::fs::write(dir.path().join("NOTES.md"), "unrelated\n").unwrap();
        std::fs::copy(
            root.join("examples/bench/logging_fault.appnet"),
            dir.path().join(POLICY),
        )
        .unwrap();
        Project {
            dir,
            // Kept between runs: the dependencies compile once.
            target: root.join("target/buildscript-project"),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn cargo(&self, args: &[&str]) -> Output {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        Command::new(cargo)
            .args(args)
            .arg("--offline")
            .current_dir(self.dir.path())
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap()
    }

    fn build(&self) -> (bool, String) {
        let output = self.cargo(&["build", "-v"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    fn run(&self) -> String {
        let output = Command::new(self.target.join("debug/uses-simplebpf"))
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    }
}

fn line<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{key}` in {output}"))
}

/// Whether cargo ran the project's build script in this build (`cargo build -v` names it).
fn ran_build_script(cargo_output: &str) -> bool {
    cargo_output.lines().any(|l| {
        l.contains("Running") && l.contains("uses-simplebpf-") && l.contains("build-script-build")
    })
}

fn outputs_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("logging_fault"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_fresh_cargo_project_builds_a_proven_policy_in_its_build_script() {
    let project = Project::new();
    let (ok, log) = project.build();
    assert!(ok, "{log}");
    assert!(ran_build_script(&log), "{log}");
    let output = project.run();
    assert_eq!(line(&output, "program"), "logging_fault_req");
    assert_eq!(line(&output, "port"), "50051");
    assert_eq!(line(&output, "aligned"), "true");
    assert_eq!(line(&output, "prob"), "0.95");
    assert_eq!(line(&output, "state"), "req_count 0, drop_count 0");
    let out_dir = PathBuf::from(line(&output, "out_dir"));
    let object = std::fs::read(out_dir.join("logging_fault.bpf.o")).unwrap();
    assert_eq!(line(&output, "object"), object.len().to_string());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("logging_fault.report.json")).unwrap())
            .unwrap();
    assert_eq!(report["checker"]["verdict"], "equivalent", "{report}");
    let elf = format!(
        "{} -> {}",
        report["optimizer"]["before"]["elf"], report["insns"]["elf"]
    );
    assert_eq!(line(&output, "elf"), elf);
    assert_eq!(
        outputs_in(&out_dir),
        [
            "logging_fault.bpf.c",
            "logging_fault.bpf.o",
            "logging_fault.report.json",
            "logging_fault.rs"
        ]
    );

    // An unrelated file changes: the build script does not run again.
    std::fs::write(project.path("NOTES.md"), "still unrelated\n").unwrap();
    let (ok, log) = project.build();
    assert!(ok, "{log}");
    assert!(!ran_build_script(&log), "{log}");

    // The policy changes: it does, and the program follows.
    let policy = project.path(POLICY);
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace("prob = 0.95", "prob = 0.9")).unwrap();
    let (ok, log) = project.build();
    assert!(ok, "{log}");
    assert!(ran_build_script(&log), "{log}");
    assert_eq!(line(&project.run(), "prob"), "0.9");

    // No HTTP stack among the project's dependencies, build dependencies included.
    let tree = project.cargo(&["tree", "-e", "normal,build", "--prefix", "none"]);
    assert!(tree.status.success());
    let tree = String::from_utf8(tree.stdout).unwrap();
    assert!(tree.contains("simplebpf-compiler"), "{tree}");
    for http in ["reqwest", "hyper", "rustls", "h2"] {
        assert!(
            !tree
                .lines()
                .any(|l| l.split_whitespace().next() == Some(http)),
            "{http} in\n{tree}"
        );
    }

    // A lockfile whose program is wrong (one off in the threshold): the build script fails
    // with the counterexample, and the earlier outputs are gone.
    std::fs::write(&policy, &text).unwrap();
    write_wrong_lock(&policy);
    std::fs::write(
        project.path("build.rs"),
        BUILD_RS.replace(
            ".port(50051)",
            ".port(50051)\n        .backend(simplebpf::Backend::Llm)",
        ),
    )
    .unwrap();
    let (ok, log) = project.build();
    assert!(!ok, "{log}");
    assert!(
        log.contains("is not proven equivalent to the policy"),
        "{log}"
    );
    assert!(log.contains("counterexample"), "{log}");
    assert!(log.contains("logging_fault.appnet.lock"), "{log}");
    assert!(
        log.contains("cargo:warning=") || log.contains("warning: uses-simplebpf"),
        "{log}"
    );
    assert_eq!(outputs_in(&out_dir), Vec::<String>::new());
}

/// A lock for the policy at port 50051 holding the rules backend's program with its
/// threshold one too low.
fn write_wrong_lock(policy: &Path) {
    let source = std::fs::read(policy).unwrap();
    let options = BuildOptions {
        port: 50051,
        kernel: KernelUse::Skip,
        optimize: None,
        ..BuildOptions::default()
    };
    let built = pipeline::build("logging_fault", &source, &options).unwrap();
    let right = "4080218932ULL";
    assert!(built.c_source.contains(right), "{}", built.c_source);
    let lock = simplebpf::lock::Lock {
        format: simplebpf::lock::FORMAT,
        simplebpf: env!("CARGO_PKG_VERSION").to_string(),
        policy_sha256: simplebpf::outputs::sha256_hex(&source),
        port: 50051,
        prompt_sha256: simplebpf_compiler::llm::prompt::templates_sha256(),
        model: "edited by hand".to_string(),
        c: built.c_source.replace(right, "4080218931ULL"),
        object_sha256: String::new(),
    };
    std::fs::write(simplebpf::lock::Lock::path_for(policy), lock.to_bytes()).unwrap();
}

fn in_process(policy: &Path, out: &Path) -> Builder {
    let mut builder = Builder::new(policy);
    builder.out_dir(out).cargo_messages(false).optimize(false);
    builder
}

#[test]
fn a_policy_with_errors_names_the_file_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("broken.appnet");
    std::fs::write(&policy, "state:\n\tn: int\n\nreq(rpc):\n\tn = m + 1\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // A stale module of the same name, as an earlier build would have left it.
    std::fs::write(
        out.join("broken.rs"),
        "// Generated by simplebpf 0.1.0 from broken.appnet (port 9000). Rebuilt by the build script; do not edit.\n",
    )
    .unwrap();
    let error = in_process(&policy, &out).build().unwrap_err();
    assert!(matches!(error, BuildScriptError::Policy { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(&policy.display().to_string()), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour: {text:?}");
    assert_eq!(format!("{error:?}"), text, "unwrap() shows the diagnostic");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    // A file of that name simplebpf did not write stays.
    std::fs::write(out.join("broken.rs"), "fn mine() {}\n").unwrap();
    in_process(&policy, &out).build().unwrap_err();
    assert_eq!(
        std::fs::read_to_string(out.join("broken.rs")).unwrap(),
        "fn mine() {}\n"
    );
}

#[test]
fn a_missing_policy_a_missing_clang_and_no_out_dir_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("missing.appnet");
    let error = in_process(&missing, &out).build().unwrap_err().to_string();
    assert!(error.contains(&missing.display().to_string()), "{error}");

    let policy = common::root().join("examples/fault.appnet");
    let error = in_process(&policy, &out)
        .clang(dir.path().join("no-such-clang"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("no-such-clang"), "{error}");

    // Outside cargo's build scripts nothing sets OUT_DIR.
    let error = Builder::new(&policy)
        .cargo_messages(false)
        .build()
        .unwrap_err();
    assert!(matches!(error, BuildScriptError::NoOutDir), "{error}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
}

#[test]
fn the_llm_backend_without_a_lock_never_asks_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("fault.appnet");
    std::fs::copy(common::root().join("examples/fault.appnet"), &policy).unwrap();
    let out = dir.path().join("out");
    let error = in_process(&policy, &out)
        .backend(Backend::Llm)
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("there is no lockfile"), "{error}");
    assert!(error.contains("fault.appnet.lock"), "{error}");
}

/// The generated module of each example, with and without the aya functions.
#[test]
fn the_generated_modules() {
    let mut policies = common::examples();
    policies.push((
        "sizes".to_string(),
        common::root().join("examples/loader/policies/sizes.appnet"),
    ));
    for (name, path) in policies {
        let source = std::fs::read(&path).unwrap();
        let options = BuildOptions {
            kernel: KernelUse::Skip,
            optimize: None,
            ..BuildOptions::default()
        };
        let built = pipeline::build(&name, &source, &options).unwrap();
        let program = simplebpf_dsl::analyze_bytes(&source).ir.unwrap();
        let insns = Insns {
            elf: built.report.elf_insns,
            xlated: None,
            jited: None,
        };
        let policy_path = PathBuf::from(format!("policies/{name}.appnet"));
        let object_path = PathBuf::from(format!("/out/{name}.bpf.o"));
        for aya in [false, true] {
            let spec = ModuleSpec {
                name: &name,
                policy_path: &policy_path,
                program_name: &built.gated.program,
                port: options.port,
                object_path: &object_path,
                program: &program,
                contract: built.gated.contract.as_ref().unwrap(),
                object: &built.gated.object,
                before: insns,
                after: insns,
                aya,
            };
            let module = rust_module::render(&spec).unwrap();
            let suffix = if aya { "aya" } else { "plain" };
            insta::assert_snapshot!(format!("module_{name}_{suffix}"), module);
        }
    }
}
