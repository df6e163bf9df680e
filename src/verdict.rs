//! A checker verdict for people and for tools: one text form and one JSON shape, used by
//! `check`, by `build` (on a refusal and in the report), and later by the LLM loop's
//! feedback. A counterexample is replayed in the interpreter first — one that does not
//! reproduce there is an internal error, never a "not equivalent" — and, when the object is
//! at hand, in the kernel.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::bail;
use num_bigint::BigInt;
use serde_json::{Value as Json, json};
use simplebpf_checker::reference::{self, Replayed};
use simplebpf_checker::{Counterexample, KernelReplay, Verdict};
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
) -> anyhow::Result<Described> {
    let contract = compiled.and_then(|c| c.contract.as_ref());
    let Verdict::NotEquivalent { counterexample, .. } = verdict else {
        return Ok(Described {
            text: text(verdict, None, contract),
            json: self::json(verdict, None, contract),
        });
    };
    let policy = reference::replay(program, counterexample, port)
        .map_err(|err| anyhow::anyhow!("cannot replay the counterexample: {err}"))?;
    if policy.agrees_with_program(counterexample) {
        // The policy does what the program did: the counterexample is the checker's mistake,
        // and saying "not equivalent" would be a lie.
        bail!(
            "internal error: the checker's counterexample does not reproduce in the interpreter; please report it"
        );
    }
    let kernel = compiled.map(|compiled| {
        simplebpf_checker::kernel_replay(
            &compiled.elf,
            program,
            &compiled.object,
            Some(&compiled.program),
            counterexample,
        )
    });
    match &kernel {
        Some(KernelReplay::NotReproduced {
            action,
            post,
            records,
        }) => bail!(
            "internal error: the kernel does not reproduce the checker's counterexample (it returned {} with {post:?} and records {records:?}); please report it",
            action_name(*action)
        ),
        Some(KernelReplay::NotPermitted(reason)) if kernel_required => {
            bail!("cannot replay the counterexample in the kernel: {reason}")
        }
        _ => {}
    }
    let replay = Replay {
        policy,
        kernel,
        port,
    };
    Ok(Described {
        text: text(verdict, Some(&replay), contract),
        json: self::json(verdict, Some(&replay), contract),
    })
}

/// What replaying a counterexample showed.
#[derive(Debug, Clone)]
pub struct Replay {
    pub policy: Replayed,
    pub kernel: Option<KernelReplay>,
    pub port: u16,
}

pub fn action_name(action: u32) -> String {
    match action {
        1 => "XDP_DROP".to_string(),
        2 => "XDP_PASS".to_string(),
        other => format!("action {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The integer a float value is stored as, at the variable's scale.
fn stored(contract: Option<&Contract>, name: &str, value: &Value) -> Option<BigInt> {
    let Value::Float(v) = value else {
        return None;
    };
    let scale = contract?.var(name)?.scale.clone()?;
    let scaled = v * num_rational::BigRational::from_integer(scale);
    scaled.is_integer().then(|| scaled.to_integer())
}

/// A value as people read it: floats in the policy's units, with the stored integer.
fn shown(contract: Option<&Contract>, name: &str, value: &Value) -> String {
    match stored(contract, name, value) {
        Some(raw) => format!("{value} (stored {raw})"),
        None => value.to_string(),
    }
}

fn kernel_line(kernel: &KernelReplay) -> String {
    match kernel {
        KernelReplay::Reproduced => "reproduced".to_string(),
        KernelReplay::NotPermitted(reason) | KernelReplay::Unavailable(reason) => {
            format!("not replayed ({reason})")
        }
        KernelReplay::NotReproduced { .. } => "NOT reproduced".to_string(),
    }
}

/// The packet's fields as LANGUAGE.md §4.1 reads them.
fn packet_lines(dissection: &Dissection, out: &mut String) {
    let f = &dissection.fields;
    if let Some(ethertype) = f.ethertype {
        let name = match ethertype {
            0x0800 => " (IPv4)",
            0x86DD => " (IPv6)",
            _ => "",
        };
        let _ = writeln!(out, "    Ethernet type   {ethertype:#06x}{name}");
    }
    let mut ip = Vec::new();
    if let Some(version) = f.ip_version {
        ip.push(format!("version {version}"));
    }
    if let Some(ihl) = f.ihl {
        ip.push(format!("IHL {ihl}"));
    }
    if let Some(frag) = f.frag_off {
        ip.push(format!("frag_off {frag:#06x}"));
    }
    if let Some(protocol) = f.protocol {
        ip.push(format!("protocol {protocol}"));
    }
    if !ip.is_empty() {
        let _ = writeln!(out, "    IP              {}", ip.join(", "));
    }
    if let (Some(dest), Some(length)) = (f.udp_dest, f.udp_length) {
        let _ = writeln!(
            out,
            "    UDP             destination port {dest}, length {length}"
        );
    }
    match dissection.verdict {
        Ok(payload) => {
            let _ = writeln!(
                out,
                "    RPC filter      an RPC request, payload {payload} bytes"
            );
        }
        Err(clause) => {
            let _ = writeln!(out, "    RPC filter      not an RPC: {clause} (§4.1)");
        }
    }
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

pub fn text(verdict: &Verdict, replay: Option<&Replay>, contract: Option<&Contract>) -> String {
    match verdict {
        Verdict::Equivalent {
            ms,
            paths,
            assumptions,
            budget,
        } => {
            let mut out = format!(
                "equivalent: proven for every input ({paths} program paths, {ms} ms, {} of {} solver resource units)\nassumptions:\n",
                budget.used, budget.limit
            );
            for a in assumptions {
                let _ = writeln!(out, "  - {a}");
            }
            out
        }
        Verdict::NotEquivalent {
            counterexample: cx,
            ms,
        } => counterexample_text(cx, *ms, replay, contract),
        Verdict::Race {
            instruction,
            variable,
        } => format!(
            "not equivalent (race): instruction {instruction} writes `{variable}` after reading it, neither as one atomic instruction nor inside a bpf_spin_lock section; concurrent requests can lose updates\n"
        ),
        Verdict::Unknown { reason } => format!("unknown: {reason}\n"),
    }
}

fn counterexample_text(
    cx: &Counterexample,
    ms: u128,
    replay: Option<&Replay>,
    contract: Option<&Contract>,
) -> String {
    let mut out = format!(
        "not equivalent: a counterexample, found by {} ({ms} ms)\n\ninputs\n",
        cx.found_by
    );
    let _ = writeln!(
        out,
        "  packet ({} bytes)  {}",
        cx.packet.len(),
        hex(&cx.packet)
    );
    if let Some(replay) = replay {
        packet_lines(&rpc_filter::dissect(&cx.packet, replay.port), &mut out);
    }
    let _ = writeln!(out, "  time              {} ns", cx.now);
    let _ = writeln!(out, "  draws             {:?}", cx.draws);
    for (name, value) in &cx.pre_state {
        let _ = writeln!(out, "  {name:<17} {}", shown(contract, name, value));
    }
    let _ = writeln!(out, "\n{:<18} {:<28} {:<28}", "", "program", "policy");
    let policy = replay.map(|r| &r.policy);
    let _ = writeln!(
        out,
        "{:<18} {:<28} {:<28}",
        "action",
        action_name(cx.program_action),
        policy.map(|p| action_name(p.action)).unwrap_or_default()
    );
    for (name, value) in &cx.program_post {
        let expected = policy
            .and_then(|p| p.post.get(name))
            .map(|v| shown(contract, name, v))
            .unwrap_or_default();
        let actual = shown(contract, name, value);
        let mark = if expected == actual {
            ""
        } else {
            "  <- differs"
        };
        let _ = writeln!(out, "{name:<18} {actual:<28} {expected:<28}{mark}");
    }
    let show = |records: &[(String, Value)]| {
        records
            .iter()
            .map(|(v, x)| format!("{v} <- {x}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let policy_records = policy.map(|p| p.records.as_slice()).unwrap_or_default();
    if !cx.program_records.is_empty() || !policy_records.is_empty() {
        let _ = writeln!(
            out,
            "{:<18} {:<28} {:<28}",
            "records",
            show(&cx.program_records),
            show(policy_records)
        );
    }
    if let Some(kernel) = replay.and_then(|r| r.kernel.as_ref()) {
        let _ = writeln!(
            out,
            "\nkernel replay (BPF_PROG_TEST_RUN): {}",
            kernel_line(kernel)
        );
    }
    out
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
