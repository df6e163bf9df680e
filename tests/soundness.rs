//! Soundness is tested, not assumed: random small policies are compiled by the backend and
//! checked; for every "equivalent" verdict the very object that was proven runs on 200
//! generated inputs in the kernel and in the interpreter, and any disagreement fails. A
//! "not equivalent" on the backend's own output fails too (a backend or checker bug).
//!
//! The generated policies draw no random numbers and read no clock, so the shipped object
//! (not a test build) runs as is; randomness is covered by the differential test and the
//! mutation suite.

mod common;

use common::generate::{packet, pre_state};
use common::{PORT, Rng};
use simplebpf_checker::{Options, Verdict};
use simplebpf_compiler::backend;
use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_compiler::rpc_filter::{Classification, classify};
use simplebpf_compiler::state_io;
use simplebpf_dsl::ast::HandlerKind;
use simplebpf_dsl::interp::{self, Action, Inputs, Request};

const POLICIES: usize = 24;
const INPUTS: usize = 200;

/// One statement of `req`, indented by `depth` tabs.
fn statement(rng: &mut Rng, depth: usize) -> String {
    let tabs = "\t".repeat(depth);
    let k = rng.below(300);
    match rng.below(if depth > 2 { 7 } else { 9 }) {
        0 => format!("{tabs}a = a + byte_size(rpc, 'body')\n"),
        1 => format!("{tabs}b = b + {k}\n"),
        2 => format!("{tabs}a = a - {k}\n"),
        3 => format!("{tabs}b = a\n"),
        4 => format!("{tabs}flag = byte_size(rpc, 'body') < {k}\n"),
        5 => format!("{tabs}c = c + 1\n"),
        6 => format!("{tabs}send(err('refused'), Up)\n"),
        7 => format!(
            "{tabs}match byte_size(rpc, 'body') > {k}:\n{tabs}\ttrue =>\n{}{tabs}\tfalse =>\n{}",
            block(rng, depth + 2),
            block(rng, depth + 2)
        ),
        _ => format!(
            "{tabs}match {}:\n{tabs}\ttrue =>\n{}{tabs}\tfalse =>\n{}",
            if rng.chance(50) {
                format!("a > {k}")
            } else {
                "flag".to_string()
            },
            block(rng, depth + 2),
            block(rng, depth + 2)
        ),
    }
}

fn block(rng: &mut Rng, depth: usize) -> String {
    let mut out = String::new();
    for _ in 0..1 + rng.below(2) {
        out.push_str(&statement(rng, depth));
    }
    out
}

fn policy(rng: &mut Rng) -> String {
    format!(
        "state:\n\ta: int\n\tb: int\n\tc: uint\n\tflag: bool\n\tlimit: int\n\ninit():\n\ta = {}\n\tlimit = {}\n\nreq(rpc):\n{}\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n",
        rng.below(100),
        rng.below(100),
        block(rng, 1)
    )
}

#[test]
fn every_equivalent_verdict_holds_on_the_kernel() {
    let mut rng = Rng::new(0x5017_d000);
    let mut proven = 0;
    let mut refused = 0;
    for index in 0..POLICIES {
        let source = policy(&mut rng);
        let analysis = simplebpf_dsl::analyze(&source);
        assert!(
            !analysis.has_errors(),
            "policy {index}:\n{source}\n{:?}",
            analysis.diagnostics
        );
        let program = analysis.ir.unwrap();
        let emitted = match backend::emit(
            &program,
            &backend::Options {
                port: PORT,
                name: format!("random{index}"),
                test_hooks: false,
                strategy: Default::default(),
            },
        ) {
            Ok(emitted) => emitted,
            Err(_) => {
                // Refused by the backend with a diagnostic (e.g. a map read-modify-write):
                // nothing to check.
                refused += 1;
                continue;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let elf = clang::compile(&emitted.c_source, dir.path(), &ClangOptions::default()).unwrap();
        let object = BpfObject::parse(&elf).unwrap();
        let name = object.xdp_program(None).unwrap().name.clone();
        let verdict = simplebpf_checker::Session::new(
            &program,
            Options {
                port: PORT,
                ..Options::default()
            },
        )
        .check(&elf, &object, &name)
        .expect("not interrupted");
        match verdict {
            Verdict::Equivalent { .. } => {}
            Verdict::Unknown { reason } => {
                eprintln!("policy {index}: unknown ({reason})");
                continue;
            }
            other => panic!(
                "policy {index}: the backend's own C is {other:?}\n{source}\n{}",
                emitted.c_source
            ),
        }
        proven += 1;
        let Some(loaded) = common::load_or_skip(&elf, "a random policy") else {
            return;
        };
        let contract = &simplebpf_compiler::contract::read(&program, &object).unwrap();
        let initial = interp::load(&program, &[], 0).unwrap().state;
        for case in 0..INPUTS {
            let frame = packet(&mut rng);
            let pre = pre_state(&mut rng, contract, &initial, 0);
            state_io::write_state(&loaded, contract, &pre).unwrap();
            let (action, _) = loaded.test_run(&frame, 1).unwrap();
            let post = state_io::read_state(&loaded, contract).unwrap();
            let (expected_action, expected_state) = match classify(&frame, PORT) {
                Classification::NotRpc => (2, pre.clone()),
                Classification::Rpc { payload_len } => {
                    let inputs = Inputs {
                        request: Request {
                            payload_len: u64::from(payload_len),
                        },
                        draws: &[],
                        time_ns: 0,
                    };
                    let outcome = interp::run(&program, HandlerKind::Req, &pre, &inputs).unwrap();
                    let action = match outcome.action {
                        Action::Forward => 2,
                        Action::Reject { .. } => 1,
                    };
                    (action, outcome.state)
                }
            };
            assert_eq!(
                (action, &post),
                (expected_action, &expected_state),
                "policy {index} was proven equivalent, but input {case} disagrees:\n{source}\npre-state {:?}",
                pre.vars
            );
        }
    }
    eprintln!(
        "{proven} random policies proven and confirmed on {INPUTS} kernel runs each; {refused} refused by the backend"
    );
    assert!(
        proven >= POLICIES / 2,
        "too few policies were proven ({proven})"
    );
}
