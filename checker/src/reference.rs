//! What the policy does on concrete inputs: the reference RPC classifier (LANGUAGE.md §4.1),
//! then `req` in the interpreter. Pre-tests compare the kernel with it, and `simplebpf check`
//! replays every counterexample through it.

use simplebpf_compiler::rpc_filter::{Classification, classify};
use simplebpf_dsl::ast::HandlerKind;
use simplebpf_dsl::interp::{self, Action, Inputs, InterpError, Request, State, Value};
use simplebpf_dsl::ir::Program;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// The XDP action the policy means, its state afterwards and the records it appends.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub action: u32,
    pub state: State,
    pub records: Vec<(String, Value)>,
}

/// Runs the policy on `frame` from state `pre`; a frame that is not an RPC passes untouched.
pub fn run(
    program: &Program,
    frame: &[u8],
    port: u16,
    pre: &State,
    draws: &[u32],
    now: u64,
) -> Result<Outcome, InterpError> {
    let Classification::Rpc { payload_len } = classify(frame, port) else {
        return Ok(Outcome {
            action: XDP_PASS,
            state: pre.clone(),
            records: Vec::new(),
        });
    };
    let inputs = Inputs {
        request: Request {
            payload_len: u64::from(payload_len),
        },
        draws,
        time_ns: now,
    };
    let outcome = interp::run(program, HandlerKind::Req, pre, &inputs)?;
    Ok(Outcome {
        action: match outcome.action {
            Action::Forward => XDP_PASS,
            Action::Reject { .. } => XDP_DROP,
        },
        state: outcome.state,
        records: outcome
            .records
            .into_iter()
            .map(|record| (record.vec, record.value))
            .collect(),
    })
}
