//! Shared by the checker's tests and its benchmark (`#[path]`-included there): the examples,
//! the C the backend emits for them, and that C compiled.

#![allow(dead_code)]

use std::path::PathBuf;

use simplebpf_compiler::backend;
use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_dsl::ir::Program;

/// Every example, as a path below `examples/` without the extension.
pub const EXAMPLES: &[&str] = &[
    "null",
    "fault",
    "acl",
    "ratelimit",
    "bench/logging",
    "bench/logging_fault",
    "bench/fault_condition",
];

pub const PORT: u16 = 9000;

pub fn example_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/{name}.appnet"))
}

/// The policy's IR and the C the backend emits for it; `None` for a policy that does not
/// compile.
pub fn emit(source: &str) -> Option<(Program, String)> {
    emit_with(source, backend::Strategy::default())
}

/// The policy's IR and the C the backend emits for it in `strategy`'s shape.
pub fn emit_with(source: &str, strategy: backend::Strategy) -> Option<(Program, String)> {
    let program = simplebpf_dsl::analyze(source).ir?;
    let emitted = backend::emit(
        &program,
        &backend::Options {
            port: PORT,
            name: "policy".to_string(),
            test_hooks: false,
            strategy,
        },
    )
    .ok()?;
    Some((program, emitted.c_source))
}

/// `c` compiled by the pinned clang with `options`.
pub fn compile(c: &str, options: &ClangOptions) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a scratch directory");
    clang::compile(c, dir.path(), options).expect("clang compiles it")
}

/// The checker's verdict on the only XDP program of `elf`, in a session of its own (the
/// budget, the safety net and the port are the test defaults).
pub fn verdict(program: &Program, elf: &[u8]) -> simplebpf_checker::Verdict {
    let object = simplebpf_compiler::object_model::BpfObject::parse(elf).expect("an object");
    let name = object
        .xdp_program(None)
        .expect("one XDP program")
        .name
        .clone();
    let mut session = simplebpf_checker::Session::new(
        program,
        simplebpf_checker::Options {
            port: PORT,
            ..simplebpf_checker::Options::default()
        },
    );
    session.check(elf, &object, &name).expect("not interrupted")
}
