//! Shared by the kernel tests: building examples, loading them, and generating inputs.

#![allow(dead_code)]

pub mod fixtures;
pub mod generate;
pub mod scripted;

use std::path::PathBuf;

use simplebpf::pipeline;
use simplebpf_compiler::backend::{self, Emitted, Strategy};
use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_compiler::contract::{self, Contract};
use simplebpf_compiler::kernel::{self, KernelError, LoadedProgram};
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_dsl::ir::Program;

pub const PORT: u16 = 9000;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every example policy: `(name, path)`.
pub fn examples() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for dir in [root().join("examples"), root().join("examples/bench")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "appnet") {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                found.push((name, path));
            }
        }
    }
    found.sort();
    assert!(found.len() >= 7, "examples are missing: {found:?}");
    found
}

pub fn program(path: &PathBuf) -> Program {
    let source = std::fs::read_to_string(path).unwrap();
    let analysis = simplebpf_dsl::analyze(&source);
    assert!(
        !analysis.has_errors(),
        "{}: {:?}",
        path.display(),
        analysis.diagnostics
    );
    analysis.ir.unwrap()
}

/// A compiled example: the program, what the backend emitted, the object.
pub struct Compiled {
    pub program: Program,
    pub emitted: Emitted,
    pub elf: Vec<u8>,
    pub object: BpfObject,
    /// The state contract read back from the object.
    pub contract: Contract,
}

pub fn compile(name: &str, path: &PathBuf, test_hooks: bool) -> Compiled {
    compile_with(name, path, test_hooks, Strategy::default())
}

/// Every strategy the optimizer may try for the policy at `path`, one of each set that emits
/// the same C (the search judges those once too).
pub fn strategies(name: &str, path: &PathBuf) -> Vec<Strategy> {
    let program = program(path);
    let emit = |strategy: Strategy| {
        let options = backend::Options {
            port: PORT,
            name: name.to_string(),
            test_hooks: true,
            strategy,
        };
        backend::emit(&program, &options).unwrap_or_else(|d| panic!("{name}: {d:?}"))
    };
    let takes_lock = emit(Strategy::default()).layout.lock;
    let mut seen = std::collections::BTreeSet::new();
    Strategy::all(takes_lock)
        .into_iter()
        .filter(|strategy| seen.insert(emit(*strategy).c_source))
        .collect()
}

/// `compile` with one of the rules backend's strategies.
pub fn compile_with(name: &str, path: &PathBuf, test_hooks: bool, strategy: Strategy) -> Compiled {
    let program = program(path);
    let emitted = backend::emit(
        &program,
        &backend::Options {
            port: PORT,
            name: name.to_string(),
            test_hooks,
            strategy,
        },
    )
    .unwrap_or_else(|d| panic!("{name}: {d:?}"));
    let scratch = tempfile::tempdir().unwrap();
    let elf = clang::compile(&emitted.c_source, scratch.path(), &ClangOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let object = BpfObject::parse(&elf).unwrap();
    let contract = contract::read(&program, &object).unwrap_or_else(|e| panic!("{name}: {e}"));
    Compiled {
        program,
        emitted,
        elf,
        object,
        contract,
    }
}

/// Loads an object, or, when this machine cannot load programs and the kernel is not
/// required, says why and returns `None` (with `SIMPLEBPF_REQUIRE_KERNEL=1` it panics).
pub fn load_or_skip(elf: &[u8], what: &str) -> Option<LoadedProgram> {
    match LoadedProgram::load(elf, None) {
        Ok(loaded) => Some(loaded),
        Err(err @ KernelError::NotPermitted(_)) if !kernel::kernel_required() => {
            eprintln!("skipping {what}: {err} (set SIMPLEBPF_REQUIRE_KERNEL=1 to make this fail)");
            None
        }
        Err(KernelError::Rejected { log }) => panic!("{what}: the verifier rejected it:\n{log}"),
        Err(err) => panic!("{what}: {err}"),
    }
}

pub fn now_ns() -> u64 {
    pipeline::monotonic_ns()
}

/// splitmix64: a small, seedable generator, so every failure replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
