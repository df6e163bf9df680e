//! The whole front end on arbitrary bytes: lex, layout, parse, check, lower, render, and the
//! printer's round trip on whatever parses. Nothing may panic, overflow the stack or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simplebpf_dsl::render::{RenderOptions, render};

fuzz_target!(|bytes: &[u8]| {
    let analysis = simplebpf_dsl::analyze_bytes(bytes);
    let src = String::from_utf8_lossy(bytes);
    for diagnostic in &analysis.diagnostics {
        let _ = render(diagnostic, "fuzz.appnet", &src, RenderOptions::default());
    }
    if let Some(ast) = &analysis.ast {
        let printed = simplebpf_dsl::print::print_program(ast);
        let reparsed = simplebpf_dsl::parser::parse(&printed).expect("the printed form parses");
        assert_eq!(simplebpf_dsl::print::print_program(&reparsed), printed);
    }
    if let Some(program) = &analysis.ir {
        let _ = program.to_string();
        let _ = simplebpf_dsl::refusals(program);
    }
});
