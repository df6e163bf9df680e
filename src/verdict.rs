//! A checker verdict for tools: the one JSON shape, used by `check`, by `build` (on a refusal
//! and in the report). The text form and the replays behind both are
//! `simplebpf_checker::explain`, which the LLM loop's feedback uses too.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use simplebpf_checker::explain::{self, Replay, action_name, hex, kernel_line, stored};
use simplebpf_checker::{KernelReplay, Verdict};
use simplebpf_compiler::contract::Contract;
use simplebpf_compiler::rpc_filter::{self, Dissection};
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::Program;
use simplebpf_optimizer::Gated;

use crate::json;

/// A verdict ready to print.
#[derive(Debug, Clone)]
pub struct Described {
    pub text: String,
    pub json: Json,
}

/// Describes `verdict`; `compiled` is the object it is about, for the kernel replay and the
/// scales of stored floats. `kernel_required`: a replay the machine cannot run is an error.
pub fn describe(
    program: &Program,
    verdict: &Verdict,
    port: u16,
    compiled: Option<&Gated>,
    kernel_required: bool,
) -> Result<Described, explain::ExplainError> {
    let contract = compiled.and_then(|c| c.contract.as_ref());
    let replay = explain::replay(
        program,
        verdict,
        port,
        compiled.map(Gated::compiled),
        kernel_required,
    )?;
    Ok(Described {
        text: explain::text(verdict, replay.as_ref(), contract),
        json: self::json(verdict, replay.as_ref(), contract),
    })
}

fn packet_json(dissection: &Dissection) -> Json {
    let f = &dissection.fields;
    json!({
        "length": f.len,
        "ethertype": f.ethertype,
        "ip_version": f.ip_version,
        "ihl": f.ihl,
        "frag_off": f.frag_off,
        "protocol": f.protocol,
        "udp_dest": f.udp_dest,
        "udp_length": f.udp_length,
        "payload_len": dissection.verdict.ok(),
        "rpc": dissection.verdict.is_ok(),
        "failed_clause": dissection.verdict.err().map(|clause| clause.to_string()),
    })
}

/// The one JSON shape of a verdict.
pub fn json(verdict: &Verdict, replay: Option<&Replay>, contract: Option<&Contract>) -> Json {
    match verdict {
        Verdict::Equivalent {
            ms,
            paths,
            assumptions,
            budget,
        } => json!({
            "verdict": "equivalent", "ms": ms, "paths": paths, "assumptions": assumptions,
            "budget": { "limit": budget.limit, "used": budget.used },
        }),
        Verdict::NotEquivalent {
            counterexample: cx,
            ms,
        } => {
            let records = |list: &[(String, Value)]| {
                list.iter()
                    .map(|(v, x)| json!([v, json::value(x)]))
                    .collect::<Vec<_>>()
            };
            let values = |map: &BTreeMap<String, Value>| {
                map.iter()
                    .map(|(k, v)| (k.clone(), json::value(v)))
                    .collect::<serde_json::Map<_, _>>()
            };
            let stored_values = |map: &BTreeMap<String, Value>| {
                map.iter()
                    .filter_map(|(k, v)| {
                        Some((k.clone(), json!(stored(contract, k, v)?.to_string())))
                    })
                    .collect::<serde_json::Map<_, _>>()
            };
            let policy = replay.map(|r| {
                json!({
                    "action": action_name(r.policy.action),
                    "state": values(&r.policy.post),
                    "records": records(&r.policy.records),
                })
            });
            json!({
                "verdict": "not equivalent",
                "ms": ms,
                "counterexample": {
                    "packet": hex(&cx.packet),
                    "packet_fields": replay.map(|r| packet_json(&rpc_filter::dissect(&cx.packet, r.port))),
                    "time_ns": cx.now,
                    "draws": cx.draws,
                    "pre_state": values(&cx.pre_state),
                    "pre_state_stored": stored_values(&cx.pre_state),
                    "program": {
                        "action": action_name(cx.program_action),
                        "state": values(&cx.program_post),
                        "state_stored": stored_values(&cx.program_post),
                        "records": records(&cx.program_records),
                    },
                    "policy": policy,
                    "replayed_in_interpreter": replay.is_some(),
                    "reproduced_in_kernel": replay.and_then(|r| r.kernel.as_ref()).map(|k| match k {
                        KernelReplay::Reproduced => json!(true),
                        other => json!(kernel_line(other)),
                    }),
                    "found_by": cx.found_by,
                },
            })
        }
        Verdict::Race {
            instruction,
            variable,
        } => json!({
            "verdict": "not equivalent", "reason": "race", "instruction": instruction, "variable": variable,
        }),
        Verdict::Unknown { reason } => json!({ "verdict": "unknown", "reason": reason }),
    }
}
