//! Different compilations of the same correct C are all proven (no false alarms): -O1, -O2,
//! -Os and -mcpu=v2, v3, v4 of what the backend emits for every example; and every object's
//! code comes back byte for byte through the typed instruction decoder and encoder.

mod support;

use simplebpf_checker::Verdict;
use simplebpf_compiler::clang::{ClangOptions, Cpu, OptLevel};
use simplebpf_compiler::object_model::{code_sections, insn};

const COMPILATIONS: &[(OptLevel, Cpu)] = &[
    (OptLevel::O1, Cpu::V3),
    (OptLevel::O2, Cpu::V3),
    (OptLevel::Os, Cpu::V3),
    (OptLevel::O2, Cpu::V2),
    (OptLevel::O2, Cpu::V4),
];

#[test]
fn every_compilation_of_correct_c_is_proven() {
    for name in support::EXAMPLES {
        let source = std::fs::read_to_string(support::example_path(name)).unwrap();
        let (program, c) = support::emit(&source).unwrap();
        for (opt, cpu) in COMPILATIONS {
            let options = ClangOptions {
                opt_level: *opt,
                cpu: *cpu,
                ..ClangOptions::default()
            };
            let elf = support::compile(&c, &options);
            for (section, bytes) in code_sections(&elf).unwrap() {
                assert_eq!(
                    insn::encode(&insn::decode(&bytes)),
                    bytes,
                    "{name} {opt:?} {cpu:?}: {section} does not survive decode and encode"
                );
            }
            let verdict = support::verdict(&program, &elf);
            match &verdict {
                Verdict::Equivalent { ms, .. } => {
                    eprintln!("{name} {opt:?} -mcpu={cpu:?}: equivalent in {ms} ms")
                }
                other => panic!("{name} {opt:?} -mcpu={cpu:?}: {other:?}"),
            }
        }
    }
}
