//! Interpreter vs kernel: for every example, thousands of generated packets and pre-states go
//! through `BPF_PROG_TEST_RUN` and through the reference interpreter (fed by the reference
//! RPC classifier); action, post-state and ring-buffer records must agree on every one.
//!
//! The programs are test builds: `randomf` and `current_time()` read globals the harness
//! fills with the same draws and time it gives the interpreter. Everything else is the
//! shipped code.

mod common;

use common::generate::{packet, pre_state};
use common::{PORT, Rng};
use simplebpf_compiler::backend::Strategy;
use simplebpf_compiler::rpc_filter::{Classification, classify};
use simplebpf_compiler::state_io;
use simplebpf_dsl::ast::HandlerKind;
use simplebpf_dsl::interp::{self, Action, Inputs, Request};
use simplebpf_optimizer::rewrite::{self, Rule};

const CASES: usize = 2000;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// Draws near the thresholds the examples compare with, so both sides of each get hit.
const SPECIAL_DRAWS: &[u32] = &[
    0,
    1,
    u32::MAX,
    4080218931,
    4080218932,
    2147483647,
    2147483648,
    429496729,
    429496730,
];

/// The strategy's object, or with `rewritten` the optimizer's bytecode rewrite of it (`None`
/// when no rule applies).
fn compile(
    name: &str,
    path: &std::path::PathBuf,
    strategy: Strategy,
    rewritten: bool,
) -> Option<common::Compiled> {
    let mut compiled = common::compile_with(name, path, true, strategy);
    if rewritten {
        let prog = compiled.object.xdp_program(None).unwrap();
        let out = rewrite::rewrite(&prog.insns, &Rule::ALL).unwrap();
        if out.applied.is_empty() {
            return None;
        }
        compiled.elf = prog.patched(&compiled.elf, &out.insns).unwrap();
    }
    Some(compiled)
}

fn run_example(name: &str, compiled: &common::Compiled, seed: u64) -> Option<usize> {
    let mut loaded = common::load_or_skip(&compiled.elf, name)?;
    assert!(compiled.emitted.layout.test_hooks);
    let contract = &compiled.contract;
    let program = &compiled.program;
    let initial = interp::load(program, &[], 0).unwrap().state;
    let mut rng = Rng::new(seed);
    let mut rpcs = 0;
    for case in 0..CASES {
        let frame = packet(&mut rng);
        let now = if rng.chance(10) {
            rng.below(10)
        } else {
            rng.below(1 << 62) + 1
        };
        let pre = pre_state(&mut rng, contract, &initial, now);
        let draws: Vec<u32> = (0..16)
            .map(|_| {
                if rng.chance(40) {
                    *rng.pick(SPECIAL_DRAWS)
                } else {
                    rng.next_u64() as u32
                }
            })
            .collect();

        state_io::write_state(&loaded, contract, &pre).unwrap();
        state_io::set_test_inputs(&loaded, &compiled.object, &draws, now).unwrap();
        state_io::drain_records(&mut loaded, contract).unwrap();
        let (action, _) = loaded.test_run(&frame, 1).unwrap();
        let post = state_io::read_state(&loaded, contract).unwrap();
        let records = state_io::drain_records(&mut loaded, contract).unwrap();

        let context = || {
            format!(
                "{name}, case {case} (seed {seed}): packet {}\npre-state {:?}\ndraws {draws:?}, now {now}",
                hex(&frame),
                pre.vars
            )
        };
        let (expected_action, expected_state, expected_records) = match classify(&frame, PORT) {
            Classification::NotRpc => (XDP_PASS, pre.clone(), Vec::new()),
            Classification::Rpc { payload_len } => {
                rpcs += 1;
                let inputs = Inputs {
                    request: Request {
                        payload_len: u64::from(payload_len),
                    },
                    draws: &draws,
                    time_ns: now,
                };
                let outcome = interp::run(program, HandlerKind::Req, &pre, &inputs).unwrap();
                let action = match outcome.action {
                    Action::Forward => XDP_PASS,
                    Action::Reject { .. } => XDP_DROP,
                };
                (action, outcome.state, outcome.records)
            }
        };
        assert_eq!(action, expected_action, "action differs: {}", context());
        assert_eq!(post, expected_state, "post-state differs: {}", context());
        assert_eq!(records, expected_records, "records differ: {}", context());
    }
    Some(rpcs)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_example_agrees_with_the_interpreter_in_the_kernel() {
    for (index, (name, path)) in common::examples().iter().enumerate() {
        // Every strategy the optimizer may pick, on the same packets.
        for (strategy, rewritten) in common::strategies(name, path)
            .into_iter()
            .flat_map(|strategy| [(strategy, false), (strategy, true)])
        {
            let seed = 0x5eed_0000 + index as u64;
            let Some(compiled) = compile(name, path, strategy, rewritten) else {
                continue;
            };
            if let Some(rpcs) = run_example(name, &compiled, seed) {
                let how = format!(
                    "{}{}",
                    strategy.describe(),
                    if rewritten { " + rewrites" } else { "" }
                );
                eprintln!("{name} ({how}): {CASES} packets agree ({rpcs} of them RPCs)");
                assert!(rpcs >= CASES / 4, "{name}: too few RPCs generated ({rpcs})");
            }
        }
    }
}
