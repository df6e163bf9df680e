//! Different compilations of the same correct C are all proven (no false alarms): -O1, -O2,
//! -Os and -mcpu=v2, v3, v4 of what the backend emits for every example.

use std::path::PathBuf;
use std::time::Duration;

use simplebpf_checker::{Options, Verdict, check};
use simplebpf_compiler::backend;
use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_compiler::object_model::BpfObject;

const EXAMPLES: &[&str] = &[
    "null",
    "fault",
    "acl",
    "ratelimit",
    "bench/logging",
    "bench/logging_fault",
    "bench/fault_condition",
];

const COMPILATIONS: &[(&str, &str)] = &[
    ("-O1", "v3"),
    ("-O2", "v3"),
    ("-Os", "v3"),
    ("-O2", "v2"),
    ("-O2", "v4"),
];

#[test]
fn every_compilation_of_correct_c_is_proven() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for name in EXAMPLES {
        let path = root.join(format!("{name}.appnet"));
        let program = simplebpf_dsl::analyze(&std::fs::read_to_string(&path).unwrap())
            .ir
            .unwrap();
        let emitted = backend::emit(
            &program,
            &backend::Options {
                port: 9000,
                name: "policy".to_string(),
                test_hooks: false,
            },
        )
        .unwrap();
        for (opt, cpu) in COMPILATIONS {
            let dir = tempfile::tempdir().unwrap();
            let options = ClangOptions {
                opt_level: opt.to_string(),
                cpu: cpu.to_string(),
                ..ClangOptions::default()
            };
            let elf = clang::compile(&emitted.c_source, dir.path(), &options).unwrap();
            let object = BpfObject::parse(&elf).unwrap();
            let verdict = check(
                &program,
                &object,
                &Options {
                    port: 9000,
                    timeout: Duration::from_secs(30),
                },
            );
            match &verdict {
                Verdict::Equivalent { ms, .. } => {
                    eprintln!("{name} {opt} -mcpu={cpu}: equivalent in {ms} ms")
                }
                other => panic!("{name} {opt} -mcpu={cpu}: {other:?}"),
            }
        }
    }
}
