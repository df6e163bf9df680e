//! Laws of the front end on generated inputs: it never panics, and parse ∘ print is the
//! identity on every tree it parses.

mod common;

use proptest::prelude::*;
use simplebpf_dsl::print::print_program;

/// Pieces that make up real policies, so that generated text gets deep into the grammar.
const PIECES: &[&str] = &[
    "state",
    "init",
    "req",
    "resp",
    "pass",
    "send",
    "err",
    "Up",
    "Down",
    "get",
    "set",
    "delete",
    "byte_size",
    "size",
    "match",
    "foreach",
    "lambda",
    "Some",
    "None",
    "true",
    "false",
    "and",
    "or",
    "Vec",
    "Map",
    "rpc",
    "x",
    "n",
    "_",
    "prob",
    "inf",
    "randomf",
    "current_time",
    "time_diff",
    "min",
    "max",
    "0",
    "1",
    "42",
    "0.95",
    ".5",
    "1e3",
    "'a'",
    "'fault'",
    "(",
    ")",
    ",",
    ":",
    "=",
    "=>",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "@",
    "\n",
    "\n\t",
    "\n\t\t",
    "\n    ",
    "\t",
    " ",
    " ",
    "#c\n",
    "\\\n",
    "int",
    "float",
    "<",
    "%",
    "\"",
    "'",
];

fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..120).prop_map(|p| p.concat())
}

/// A valid policy with generated statements in `req`, to reach the checker and lowering.
fn policy_body() -> impl Strategy<Value = String> {
    let line = prop::collection::vec(prop::sample::select(PIECES), 1..12).prop_map(|p| p.join(" "));
    prop::collection::vec(line, 1..6).prop_map(|lines| {
        let body: String = lines.iter().map(|l| format!("\t{}\n", l.replace('\n', " "))).collect();
        format!(
            "state:\n\tn: int\n\tprob: float\n\tm: Map<int, int>\n\ninit():\n\tprob = 0.5\n\nreq(rpc):\n{body}\nresp(rpc):\n\tsend(rpc, Up)\n"
        )
    })
}

fn check_round_trip(src: &str) {
    if let Ok(ast) = simplebpf_dsl::parser::parse(src) {
        let printed = print_program(&ast);
        let reparsed = simplebpf_dsl::parser::parse(&printed)
            .unwrap_or_else(|e| panic!("printed form does not parse: {e:?}\n{printed}"));
        assert_eq!(
            common::without_spans(&format!("{ast:?}")),
            common::without_spans(&format!("{reparsed:?}"))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = simplebpf_dsl::analyze_bytes(&bytes);
    }

    #[test]
    fn random_token_sequences_never_panic_and_round_trip(src in pieces()) {
        let analysis = simplebpf_dsl::analyze(&src);
        for d in &analysis.diagnostics {
            prop_assert!(d.span.start <= d.span.end && d.span.end <= src.len());
        }
        check_round_trip(&src);
    }

    #[test]
    fn generated_handlers_never_panic_and_round_trip(src in policy_body()) {
        let analysis = simplebpf_dsl::analyze(&src);
        if let Some(program) = &analysis.ir {
            // Anything that checks must also print as IR.
            let _ = program.to_string();
        }
        check_round_trip(&src);
    }
}
