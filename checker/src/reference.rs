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

/// What the policy does on a counterexample's inputs: its XDP action, the stored
/// variables afterwards as the counterexample compares them (maps at the keys in scope), and
/// the records it appends. A counterexample whose program side equals this is the checker's
/// own mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub action: u32,
    pub post: std::collections::BTreeMap<String, Value>,
    pub records: Vec<(String, Value)>,
}

impl Replayed {
    /// Whether the program did exactly what the policy does here.
    pub fn agrees_with_program(&self, cx: &crate::verdict::Counterexample) -> bool {
        self.action == cx.program_action
            && self.post == cx.program_post
            && self.records == cx.program_records
    }
}

/// Runs the policy on a counterexample: `init` at time 0, the counterexample's pre-state over
/// it, then `req` on its packet, draws and time.
pub fn replay(
    program: &Program,
    cx: &crate::verdict::Counterexample,
    port: u16,
) -> Result<Replayed, String> {
    let mut state = interp::load(program, &[], 0)
        .map_err(|e| format!("init: {e}"))?
        .state;
    for (name, value) in &cx.pre_state {
        state
            .set(program, name, value.clone())
            .map_err(|e| format!("pre-state {name}: {e}"))?;
    }
    let outcome = run(program, &cx.packet, port, &state, &cx.draws, cx.now)
        .map_err(|e| format!("req: {e}"))?;
    let post = cx
        .program_post
        .keys()
        .map(|name| (name.clone(), cx.in_scope(name, &outcome.state.vars[name])))
        .collect();
    Ok(Replayed {
        action: outcome.action,
        post,
        records: outcome.records,
    })
}
