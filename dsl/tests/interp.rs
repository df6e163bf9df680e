//! The reference semantics of LANGUAGE.md §3, rule by rule.

use num_bigint::BigInt;
use num_rational::BigRational;
use simplebpf_dsl::ast::HandlerKind;
use simplebpf_dsl::interp::{self, Action, Inputs, InterpError, Outcome, Request, State, Value};
use simplebpf_dsl::ir::Program;

fn compile(src: &str) -> Program {
    let analysis = simplebpf_dsl::analyze(src);
    assert!(!analysis.has_errors(), "{:#?}", analysis.diagnostics);
    analysis.ir.expect("no errors, so an IR")
}

/// A policy whose `req` is `body` (one statement a line, indented by one tab), with `state`
/// declarations and an `init` body.
fn policy(state: &str, init: &str, body: &str) -> String {
    let indent = |text: &str| {
        text.lines()
            .map(|line| format!("\t{line}\n"))
            .collect::<String>()
    };
    format!(
        "state:\n{}\ninit():\n{}\nreq(rpc):\n{}\nresp(rpc):\n\tsend(rpc, Up)\n",
        indent(state),
        indent(init),
        indent(body)
    )
}

#[derive(Default)]
struct Run {
    payload_len: u64,
    draws: Vec<u32>,
    time_ns: u64,
}

fn with_draws(draws: &[u32]) -> Run {
    Run {
        draws: draws.to_vec(),
        ..Run::default()
    }
}

fn req(program: &Program, state: &State, run: &Run) -> Result<Outcome, InterpError> {
    let inputs = Inputs {
        request: Request {
            payload_len: run.payload_len,
        },
        draws: &run.draws,
        time_ns: run.time_ns,
    };
    interp::run(program, HandlerKind::Req, state, &inputs)
}

/// Loads the policy (init at time 0) and runs `req` once.
#[track_caller]
fn run_once(state: &str, init: &str, body: &str, run: Run) -> Outcome {
    let program = compile(&policy(state, init, body));
    let loaded = interp::load(&program, &[], 0).expect("init runs");
    req(&program, &loaded.state, &run).expect("req runs")
}

fn var<'a>(outcome: &'a Outcome, name: &str) -> &'a Value {
    &outcome.state.vars[name]
}

fn ratio(n: i64, d: i64) -> Value {
    Value::Float(BigRational::new(BigInt::from(n), BigInt::from(d)))
}

#[test]
fn state_starts_at_zero_and_init_runs_at_load_time() {
    let program = compile(&policy(
        "a: int\nb: float\nc: bool\nt: Instant\nu: Instant\nm: Map<int, int>",
        "u = current_time()",
        "pass",
    ));
    let loaded = interp::load(&program, &[], 77).unwrap();
    assert_eq!(loaded.state.vars["a"], Value::Int(0));
    assert_eq!(loaded.state.vars["b"], ratio(0, 1));
    assert_eq!(loaded.state.vars["c"], Value::Bool(false));
    assert_eq!(loaded.state.vars["t"], Value::Instant(0));
    assert_eq!(loaded.state.vars["u"], Value::Instant(77));
    assert_eq!(loaded.state.vars["m"], Value::Map(Default::default()));
}

#[test]
fn send_ends_the_handler_and_falling_off_forwards() {
    let out = run_once(
        "n: int",
        "pass",
        "send(err('stop'), Up)\nn = 1",
        Run::default(),
    );
    assert_eq!(
        out.action,
        Action::Reject {
            reason: "stop".into()
        }
    );
    assert_eq!(var(&out, "n"), &Value::Int(0));
    let out = run_once("n: int", "pass", "n = 1", Run::default());
    assert_eq!(out.action, Action::Forward);
    assert_eq!(var(&out, "n"), &Value::Int(1));
}

#[test]
fn and_or_short_circuit() {
    // The right side of `or` draws only when the left side is false.
    let body = "match (randomf(0, 1) < 0.5) or (randomf(0, 1) < 0.5):\n\ttrue =>\n\t\tsend(rpc, Down)\n\tfalse =>\n\t\tsend(err('no'), Up)";
    let out = run_once("pass", "pass", body, with_draws(&[0]));
    assert_eq!(out.draws_used, 1);
    let out = run_once("pass", "pass", body, with_draws(&[u32::MAX, 0]));
    assert_eq!(out.draws_used, 2);
    assert_eq!(out.action, Action::Forward);
    let body = "x = (randomf(0, 1) > 0.5) and (randomf(0, 1) > 0.5)";
    let out = run_once("pass", "pass", body, with_draws(&[0]));
    assert_eq!(out.draws_used, 1);
}

#[test]
fn integers_wrap_at_64_bits() {
    let out = run_once(
        "a: int\nb: uint",
        "pass",
        "a = inf + 1\nb = b - 1",
        Run::default(),
    );
    assert_eq!(var(&out, "a"), &Value::Int(i64::MIN));
    assert_eq!(var(&out, "b"), &Value::Uint(u64::MAX));
}

#[test]
fn integer_division_truncates_toward_zero_and_by_zero_gives_zero() {
    let out = run_once(
        "a: int\nb: int\nc: int\nd: float\ne: int",
        "pass",
        "a = (0 - 7) / 2\nb = 7 / 0\nc = (0 - inf - 1) / (0 - 1)\nd = 1.5 / 0.0\ne = 7 / 2",
        Run::default(),
    );
    assert_eq!(var(&out, "a"), &Value::Int(-3));
    assert_eq!(var(&out, "b"), &Value::Int(0));
    assert_eq!(var(&out, "c"), &Value::Int(i64::MIN));
    assert_eq!(var(&out, "d"), &ratio(0, 1));
    assert_eq!(var(&out, "e"), &Value::Int(3));
}

#[test]
fn floats_are_exact_rationals_and_ints_promote_exactly() {
    let out = run_once(
        "ok: bool\nx: float\ny: float",
        "pass",
        "ok = (0.1 + 0.2) == 0.3\nx = 1 / 3.0\ny = inf + 0.5",
        Run::default(),
    );
    assert_eq!(var(&out, "ok"), &Value::Bool(true));
    assert_eq!(var(&out, "x"), &ratio(1, 3));
    assert_eq!(
        var(&out, "y"),
        &Value::Float(BigRational::new(
            BigInt::from(i64::MAX) * 2 + 1,
            BigInt::from(2)
        ))
    );
}

#[test]
fn randomf_is_lo_plus_span_times_u_over_2_pow_32() {
    let out = run_once(
        "x: float",
        "pass",
        "x = randomf(2, 4)",
        with_draws(&[1 << 31]),
    );
    assert_eq!(var(&out, "x"), &ratio(3, 1));
    let out = run_once("x: float", "pass", "x = randomf(0, 1)", with_draws(&[1]));
    assert_eq!(
        var(&out, "x"),
        &Value::Float(BigRational::new(1.into(), BigInt::from(1u64 << 32)))
    );
}

#[test]
fn randomf_below_095_decides_exactly_at_the_threshold() {
    let body = "match randomf(0, 1) < 0.95:\n\ttrue =>\n\t\tsend(rpc, Down)\n\tfalse =>\n\t\tsend(err('fault'), Up)";
    let decide = |u: u32| run_once("pass", "pass", body, with_draws(&[u])).action;
    assert_eq!(decide(4080218931), Action::Forward);
    assert_eq!(
        decide(4080218932),
        Action::Reject {
            reason: "fault".into()
        }
    );
    assert_eq!(decide(0), Action::Forward);
    assert_eq!(
        decide(u32::MAX),
        Action::Reject {
            reason: "fault".into()
        }
    );
}

#[test]
fn draws_are_consumed_in_evaluation_order() {
    let out = run_once(
        "a: float\nb: float",
        "pass",
        "a = randomf(0, 4)\nb = randomf(0, 4)",
        with_draws(&[1 << 30, 3 << 30]),
    );
    assert_eq!(var(&out, "a"), &ratio(1, 1));
    assert_eq!(var(&out, "b"), &ratio(3, 1));
    assert_eq!(out.draws_used, 2);
}

#[test]
fn running_out_of_draws_is_an_error_not_a_guess() {
    let program = compile(&policy("x: float", "pass", "x = randomf(0, 1)"));
    let state = State::zeroed(&program);
    assert_eq!(
        req(&program, &state, &Run::default()),
        Err(InterpError::OutOfDraws { given: 0 })
    );
}

#[test]
fn current_time_is_fixed_per_invocation_and_time_diff_is_exact_seconds() {
    let out = run_once(
        "a: Instant\nd: float\nsame: bool\nneg: float",
        "a = current_time()",
        "same = current_time() == current_time()\nd = time_diff(current_time(), a)\nneg = time_diff(a, current_time())\na = current_time()",
        Run {
            time_ns: 1_500_000_001,
            ..Run::default()
        },
    );
    assert_eq!(var(&out, "same"), &Value::Bool(true));
    assert_eq!(var(&out, "d"), &ratio(1_500_000_001, 1_000_000_000));
    assert_eq!(var(&out, "neg"), &ratio(-1_500_000_001, 1_000_000_000));
    assert_eq!(var(&out, "a"), &Value::Instant(1_500_000_001));
}

#[test]
fn min_and_max_promote_to_float_when_either_side_is_float() {
    let out = run_once(
        "a: float\nb: int\nc: float",
        "pass",
        "a = min(3, 2.5)\nb = max(3, 7)\nc = max(1, 0.5)",
        Run::default(),
    );
    assert_eq!(var(&out, "a"), &ratio(5, 2));
    assert_eq!(var(&out, "b"), &Value::Int(7));
    assert_eq!(var(&out, "c"), &ratio(1, 1));
}

#[test]
fn byte_size_is_the_payload_length() {
    let out = run_once(
        "n: int",
        "pass",
        "n = byte_size(rpc, 'body') + byte_size(rpc, 'anything')",
        Run {
            payload_len: 21,
            ..Run::default()
        },
    );
    assert_eq!(var(&out, "n"), &Value::Int(42));
}

#[test]
fn maps_get_set_delete_with_some_and_none() {
    let body = "match get(m, 1):\n\tSome(v) =>\n\t\tset(m, 2, v + 10)\n\tNone =>\n\t\tset(m, 3, 0)\ndelete(m, 1)\ndelete(m, 99)";
    let out = run_once("m: Map<int, int>", "set(m, 1, 5)", body, Run::default());
    let expected: std::collections::BTreeMap<Value, Value> =
        [(Value::Int(2), Value::Int(15))].into_iter().collect();
    assert_eq!(var(&out, "m"), &Value::Map(expected));
    let out = run_once("m: Map<int, int>", "pass", body, Run::default());
    let expected: std::collections::BTreeMap<Value, Value> =
        [(Value::Int(3), Value::Int(0))].into_iter().collect();
    assert_eq!(var(&out, "m"), &Value::Map(expected));
}

#[test]
fn inserting_into_a_full_map_does_nothing_but_overwriting_works() {
    let out = run_once(
        "@capacity(2)\nm: Map<int, int>",
        "set(m, 1, 1)\nset(m, 2, 2)",
        "set(m, 3, 3)\nset(m, 1, 10)",
        Run::default(),
    );
    let expected: std::collections::BTreeMap<Value, Value> = [
        (Value::Int(1), Value::Int(10)),
        (Value::Int(2), Value::Int(2)),
    ]
    .into_iter()
    .collect();
    assert_eq!(var(&out, "m"), &Value::Map(expected));
}

#[test]
fn vectors_append_emit_records_and_count() {
    let out = run_once(
        "v: Vec<int>\nn: int",
        "pass",
        "set(v, size(v), 7)\nset(v, size(v), byte_size(rpc, 'b'))\nn = size(v)",
        Run {
            payload_len: 3,
            ..Run::default()
        },
    );
    assert_eq!(var(&out, "v"), &Value::Vec(2));
    assert_eq!(var(&out, "n"), &Value::Int(2));
    let values: Vec<&Value> = out.records.iter().map(|r| &r.value).collect();
    assert_eq!(values, [&Value::Int(7), &Value::Int(3)]);
}

#[test]
fn a_match_no_arm_matches_runs_nothing() {
    let out = run_once(
        "n: int",
        "n = 5",
        "match n:\n\t1 =>\n\t\tsend(err('one'), Up)\n\t2 =>\n\t\tsend(err('two'), Up)\nn = 0",
        Run::default(),
    );
    assert_eq!(out.action, Action::Forward);
    assert_eq!(var(&out, "n"), &Value::Int(0));
    let out = run_once(
        "n: int",
        "n = 5",
        "match n:\n\t1 =>\n\t\tpass\n\t_ =>\n\t\tsend(err('other'), Up)",
        Run::default(),
    );
    assert_eq!(
        out.action,
        Action::Reject {
            reason: "other".into()
        }
    );
}

/// AppNet's `ratelimit` over several invocations, with exact rational token counts.
#[test]
fn token_bucket_over_several_invocations() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/ratelimit.appnet"
    ))
    .unwrap();
    let program = compile(&src);
    let mut state = interp::load(&program, &[], 0).unwrap().state;
    // limit 100, rate 1000/s, full at load time 0.
    let steps: [(u64, Action, Value); 5] = [
        (0, Action::Forward, ratio(99, 1)),
        // 1/3 ms later: refill 1/3 of a token, exactly.
        (
            333_333,
            Action::Forward,
            ratio(99_333_333 - 1_000_000, 1_000_000),
        ),
        // Long idle: the bucket is capped at the limit before the request takes one.
        (10_000_000_000, Action::Forward, ratio(99, 1)),
        (10_000_000_000, Action::Forward, ratio(98, 1)),
        (
            10_000_000_001,
            Action::Forward,
            ratio(97_000_001, 1_000_000),
        ),
    ];
    for (time_ns, action, tokens) in steps {
        let out = req(
            &program,
            &state,
            &Run {
                time_ns,
                ..Run::default()
            },
        )
        .unwrap();
        assert_eq!(
            (out.action.clone(), var(&out, "tokens").clone()),
            (action, tokens),
            "at {time_ns} ns"
        );
        assert_eq!(var(&out, "last"), &Value::Instant(time_ns));
        state = out.state;
    }
    // Drain it: at a fixed time no refill happens, so exactly 97 more requests pass.
    let mut passed = 0;
    loop {
        let out = req(
            &program,
            &state,
            &Run {
                time_ns: 10_000_000_001,
                ..Run::default()
            },
        )
        .unwrap();
        state = out.state;
        match out.action {
            Action::Forward => passed += 1,
            Action::Reject { .. } => break,
        }
    }
    assert_eq!(passed, 97);
    assert_eq!(state.vars["tokens"], ratio(1, 1_000_000));
}

#[test]
fn command_line_values_parse_exactly_or_not_at_all() {
    use simplebpf_dsl::ir::Type;
    assert_eq!(Value::parse(&Type::Float, "3"), Ok(ratio(3, 1)));
    assert_eq!(Value::parse(&Type::Float, "-1/3"), Ok(ratio(-1, 3)));
    assert_eq!(Value::parse(&Type::Float, ".5"), Ok(ratio(1, 2)));
    assert_eq!(Value::parse(&Type::Float, "2.5e-1"), Ok(ratio(1, 4)));
    for bad in ["", ".", "-", "e5", "1/0", "abc", "1.5x", "1e"] {
        assert!(Value::parse(&Type::Float, bad).is_err(), "`{bad}` parsed");
    }
    assert_eq!(Value::parse(&Type::Int, "-7"), Ok(Value::Int(-7)));
    assert!(Value::parse(&Type::Uint, "-7").is_err());
    assert_eq!(Value::parse(&Type::Instant, "5"), Ok(Value::Instant(5)));
}
