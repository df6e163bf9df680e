//! A verdict explained for people (and for a model's next prompt): a counterexample replayed
//! in the interpreter (one that does not reproduce there is the checker's mistake, never a
//! "not equivalent") and, when the object is at hand, in the kernel; the packet decoded field
//! by field with the first §4.1 clause it fails; floats in the policy's units with their
//! stored integers. The command line's JSON shape is built from the same `Replay`.

use std::fmt::Write as _;

use num_bigint::BigInt;
use simplebpf_compiler::contract::Contract;
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_compiler::rpc_filter::{self, Dissection};
use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::Program;

use crate::reference::{self, Replayed};
use crate::replay::{KernelReplay, kernel_replay};
use crate::verdict::{Counterexample, Verdict};

/// The compiled program a verdict is about.
#[derive(Debug, Clone, Copy)]
pub struct Compiled<'a> {
    pub elf: &'a [u8],
    pub object: &'a BpfObject,
    /// The XDP program's name.
    pub program: &'a str,
    pub contract: Option<&'a Contract>,
}

/// Why a counterexample cannot be shown: each is the checker's or the machine's fault, never
/// the program's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExplainError {
    #[error("cannot replay the counterexample: {0}")]
    Replay(String),
    #[error(
        "internal error: the checker's counterexample does not reproduce in the interpreter; please report it"
    )]
    NotInInterpreter,
    #[error(
        "internal error: the kernel does not reproduce the checker's counterexample (it returned {action} with {post} and records {records}); please report it"
    )]
    NotInKernel {
        action: String,
        post: String,
        records: String,
    },
    #[error("cannot replay the counterexample in the kernel: {0}")]
    KernelNotPermitted(String),
}

/// Replays a `NotEquivalent` verdict's counterexample (other verdicts have none: `None`).
/// `kernel_required`: a replay the machine cannot run is an error.
pub fn replay(
    program: &Program,
    verdict: &Verdict,
    port: u16,
    compiled: Option<Compiled<'_>>,
    kernel_required: bool,
) -> Result<Option<Replay>, ExplainError> {
    let Verdict::NotEquivalent { counterexample, .. } = verdict else {
        return Ok(None);
    };
    let policy = reference::replay(program, counterexample, port)
        .map_err(|err| ExplainError::Replay(err.to_string()))?;
    if policy.agrees_with_program(counterexample) {
        // The policy does what the program did: saying "not equivalent" would be a lie.
        return Err(ExplainError::NotInInterpreter);
    }
    let kernel = compiled.map(|compiled| {
        kernel_replay(
            compiled.elf,
            program,
            compiled.object,
            Some(compiled.program),
            counterexample,
        )
    });
    match &kernel {
        Some(KernelReplay::NotReproduced {
            action,
            post,
            records,
        }) => {
            return Err(ExplainError::NotInKernel {
                action: action_name(*action),
                post: format!("{post:?}"),
                records: format!("{records:?}"),
            });
        }
        Some(KernelReplay::NotPermitted(reason)) if kernel_required => {
            return Err(ExplainError::KernelNotPermitted(reason.clone()));
        }
        _ => {}
    }
    Ok(Some(Replay {
        policy,
        kernel,
        port,
    }))
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The integer a float value is stored as, at the variable's scale.
pub fn stored(contract: Option<&Contract>, name: &str, value: &Value) -> Option<BigInt> {
    let Value::Float(v) = value else {
        return None;
    };
    let scale = contract?.var(name)?.scale.clone()?;
    let scaled = v * num_rational::BigRational::from_integer(scale);
    scaled.is_integer().then(|| scaled.to_integer())
}

/// A value as people read it: floats in the policy's units, with the stored integer.
pub fn shown(contract: Option<&Contract>, name: &str, value: &Value) -> String {
    match stored(contract, name, value) {
        Some(raw) => format!("{value} (stored {raw})"),
        None => value.to_string(),
    }
}

pub fn kernel_line(kernel: &KernelReplay) -> String {
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
