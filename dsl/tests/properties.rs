//! Laws of the front end on generated inputs: it never panics, and parse ∘ print is the
//! identity on every tree it parses.

mod common;

use proptest::prelude::*;
use simplebpf_dsl::ast::HandlerKind;
use simplebpf_dsl::interp::{self, Inputs, InterpError, Request};
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

/// Expressions over the state of `typed_policy`, mostly well typed.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "n",
        "prob",
        "1",
        "0",
        "7",
        "0.5",
        "2.25",
        "inf",
        "randomf(0, 1)",
        "byte_size(rpc, 'b')",
        "time_diff(current_time(), last)",
        "size(v)",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(4, 24, 2, |inner| {
        let op = prop::sample::select(vec!["+", "-", "*", "/", "<", ">=", "==", "and", "or"]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (
                prop::sample::select(vec!["min", "max"]),
                inner.clone(),
                inner
            )
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        ]
    })
}

/// Statements at a given indentation, nesting matches up to `depth`.
fn stmts(depth: u32, indent: usize) -> BoxedStrategy<String> {
    let tabs = "\t".repeat(indent);
    let simple = {
        let tabs = tabs.clone();
        prop_oneof![
            expr().prop_map(|e| format!("n = {e}")),
            expr().prop_map(|e| format!("prob = {e}")),
            expr().prop_map(|e| format!("x = {e}")),
            (expr(), expr()).prop_map(|(k, v)| format!("set(m, {k}, {v})")),
            expr().prop_map(|e| format!("set(v, size(v), {e})")),
            expr().prop_map(|k| format!("delete(m, {k})")),
            Just("last = current_time()".to_string()),
            Just("send(rpc, Down)".to_string()),
            Just("send(err('e'), Up)".to_string()),
        ]
        .prop_map(move |line| format!("{tabs}{line}\n"))
    };
    if depth == 0 {
        return prop::collection::vec(simple, 1..4)
            .prop_map(|v| v.concat())
            .boxed();
    }
    let inner = tabs.clone() + "\t";
    let nested = prop_oneof![
        (
            expr(),
            stmts(depth - 1, indent + 2),
            stmts(depth - 1, indent + 2)
        )
            .prop_map({
                let (tabs, inner) = (tabs.clone(), inner.clone());
                move |(c, a, b)| {
                    format!("{tabs}match {c}:\n{inner}true =>\n{a}{inner}false =>\n{b}")
                }
            }),
        (
            expr(),
            stmts(depth - 1, indent + 2),
            stmts(depth - 1, indent + 2)
        )
            .prop_map({
                let (tabs, inner) = (tabs.clone(), inner.clone());
                move |(k, a, b)| {
                    format!("{tabs}match get(m, {k}):\n{inner}Some(y) =>\n{a}{inner}None =>\n{b}")
                }
            }),
    ];
    prop::collection::vec(prop_oneof![3 => simple, 1 => nested], 1..5)
        .prop_map(|v| v.concat())
        .boxed()
}

fn typed_policy() -> impl Strategy<Value = String> {
    stmts(2, 1).prop_map(|body| {
        format!(
            "state:\n\tn: int\n\tprob: float\n\tlast: Instant\n\t@capacity(4)\n\tm: Map<int, int>\n\tv: Vec<float>\n\ninit():\n\tprob = 0.5\n\tlast = current_time()\n\nreq(rpc):\n{body}\nresp(rpc):\n\tsend(rpc, Up)\n"
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

    /// Generated policies that check must run in the interpreter without panicking, for any
    /// payload, time and draws (running out of draws is a reported error, not a panic).
    #[test]
    fn checked_policies_run_without_panicking(
        src in typed_policy(),
        payload_len in any::<u32>(),
        time_ns in any::<u64>(),
        draws in prop::collection::vec(any::<u32>(), 0..40),
    ) {
        let analysis = simplebpf_dsl::analyze(&src);
        check_round_trip(&src);
        if let Some(program) = analysis.ir {
            let loaded = interp::load(&program, &[], 0).unwrap();
            let inputs = Inputs { request: Request { payload_len: u64::from(payload_len) }, draws: &draws, time_ns };
            match interp::run(&program, HandlerKind::Req, &loaded.state, &inputs) {
                Ok(outcome) => prop_assert!(outcome.draws_used <= draws.len()),
                Err(InterpError::OutOfDraws { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
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
