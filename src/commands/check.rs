//! `simplebpf check`: is this BPF program equivalent to this policy? (LANGUAGE.md §4.6)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use simplebpf_checker::{Counterexample, KernelReplay, Options, Verdict};
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::{self, ClangError, ClangOptions, Source};
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_dsl::interp;
use simplebpf_dsl::ir::Program;

use super::Outcome;
use crate::interrupt::ScratchDir;
use crate::json;
use crate::output::{self, Format};
use crate::pipeline;
use crate::source::{MAX_PROGRAM_BYTES, SourceFile, read_capped};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// The program: XDP C (compiled with the pinned clang) or a BPF object.
    #[arg(value_name = "PROGRAM")]
    pub program: PathBuf,
    /// The UDP port the program serves (1-65535).
    #[arg(long, value_name = "N", default_value_t = pipeline::DEFAULT_PORT, value_parser = super::port_parser())]
    pub port: u16,
    /// The XDP program to check, by name, when the object has several.
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// Give up (verdict "unknown") after this long per solver query.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Exit status of an "unknown" verdict.
pub const UNKNOWN: u8 = 3;

pub fn check(args: &CheckArgs, cancel: &Cancel) -> anyhow::Result<Outcome> {
    let file = SourceFile::read(&args.policy)?;
    let analysis = simplebpf_dsl::analyze_bytes(&file.bytes);
    let Some(program) = analysis.ir.as_ref().filter(|_| !analysis.has_errors()) else {
        output::diagnostics(&file, &analysis.diagnostics, args.format);
        return Ok(Outcome::InputErrors);
    };
    let Some(elf) = load_program(&args.program, cancel)? else {
        return Ok(Outcome::Interrupted);
    };
    let object = BpfObject::parse(&elf).with_context(|| args.program.display().to_string())?;
    let name = object
        .xdp_program(args.prog.as_deref())
        .with_context(|| args.program.display().to_string())?
        .name
        .clone();
    let Ok(verdict) = simplebpf_checker::check_object(
        program,
        &elf,
        &object,
        &Options {
            port: args.port,
            timeout: Duration::from_millis(args.timeout_ms),
            program: Some(name.clone()),
            cancel: cancel.clone(),
        },
    ) else {
        return Ok(Outcome::Interrupted);
    };
    let binary = Binary {
        elf: &elf,
        object: &object,
        program: &name,
    };
    let (text, json) = describe(program, &verdict, args.port, Some(binary))?;
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{json}")?,
        Format::Text => write!(stdout, "{text}")?,
    }
    Ok(match verdict {
        Verdict::Equivalent { .. } => Outcome::Success,
        Verdict::NotEquivalent { .. } | Verdict::Race { .. } => Outcome::InputErrors,
        Verdict::Unknown { .. } => Outcome::Unknown,
    })
}

/// The object a verdict is about, for the kernel replay of a counterexample.
#[derive(Debug, Clone, Copy)]
pub struct Binary<'a> {
    pub elf: &'a [u8],
    pub object: &'a BpfObject,
    /// The XDP program that was checked.
    pub program: &'a str,
}

/// The verdict as text and as JSON; a counterexample is first replayed in the interpreter,
/// and one that does not reproduce there is an error, never a "not equivalent".
pub fn describe(
    program: &Program,
    verdict: &Verdict,
    port: u16,
    binary: Option<Binary<'_>>,
) -> anyhow::Result<(String, serde_json::Value)> {
    let mut kernel = None;
    let replayed = match verdict {
        Verdict::NotEquivalent { counterexample, .. } => {
            let policy = replay(program, counterexample, port)?;
            if policy.0 == counterexample.program_action
                && policy.1 == counterexample.program_post
                && policy.2 == counterexample.program_records
            {
                // The policy does what the program did: the counterexample is the checker's
                // mistake, and saying "not equivalent" would be a lie.
                bail!(
                    "internal error: the checker's counterexample does not reproduce in the interpreter; please report it"
                );
            }
            if let Some(binary) = binary {
                let outcome = simplebpf_checker::kernel_replay(
                    binary.elf,
                    program,
                    binary.object,
                    Some(binary.program),
                    counterexample,
                );
                match &outcome {
                    KernelReplay::NotReproduced {
                        action,
                        post,
                        records,
                    } => bail!(
                        "internal error: the kernel does not reproduce the checker's counterexample (it returned {} with {post:?} and records {records:?}); please report it",
                        action_name(*action)
                    ),
                    KernelReplay::Unavailable(reason)
                        if reason.contains("not allowed")
                            && simplebpf_compiler::kernel::kernel_required() =>
                    {
                        bail!("cannot replay the counterexample in the kernel: {reason}")
                    }
                    _ => {}
                }
                kernel = Some(outcome);
            }
            Some(policy)
        }
        _ => None,
    };
    let mut text = verdict_text(verdict, replayed.as_ref());
    let mut json = verdict_json(verdict, replayed.as_ref());
    if let Some(outcome) = kernel {
        let (line, value) = match outcome {
            KernelReplay::Reproduced => ("reproduced".to_string(), serde_json::json!(true)),
            KernelReplay::Unavailable(reason) => (
                format!("not replayed ({reason})"),
                serde_json::json!(reason),
            ),
            KernelReplay::NotReproduced { .. } => unreachable!("bailed out above"),
        };
        text.push_str(&format!("\nkernel replay (BPF_PROG_TEST_RUN): {line}\n"));
        json["counterexample"]["reproduced_in_kernel"] = value;
    }
    Ok((text, json))
}

/// The program's object: a `.c` file compiled where it is (its own headers found beside
/// it, clang's messages citing it as given), anything else read as an object. `None` when
/// interrupted.
fn load_program(path: &Path, cancel: &Cancel) -> anyhow::Result<Option<Vec<u8>>> {
    let bytes = read_capped(path, MAX_PROGRAM_BYTES, "program")?;
    if path.extension().is_none_or(|ext| ext != "c") {
        return Ok(Some(bytes));
    }
    let scratch = ScratchDir::new().context("cannot create a scratch directory")?;
    match clang::compile_source(
        Source::File(path),
        scratch.path(),
        &ClangOptions::default(),
        cancel,
    ) {
        Ok(elf) => Ok(Some(elf)),
        Err(ClangError::Interrupted) => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot compile {}", path.display())),
    }
}

/// What the policy does on the counterexample's inputs (`reference::run`): the XDP action,
/// the stored variables afterwards (maps at the keys in scope) and the records.
fn replay(program: &Program, cx: &Counterexample, port: u16) -> anyhow::Result<Replayed> {
    let mut state = interp::load(program, &[], 0)
        .map_err(|e| anyhow::anyhow!("init: {e}"))?
        .state;
    for (name, value) in &cx.pre_state {
        state
            .set(program, name, value.clone())
            .map_err(|e| anyhow::anyhow!("pre-state {name}: {e}"))?;
    }
    let outcome =
        simplebpf_checker::reference::run(program, &cx.packet, port, &state, &cx.draws, cx.now)
            .map_err(|e| anyhow::anyhow!("req: {e}"))?;
    let post = cx
        .program_post
        .keys()
        .map(|name| (name.clone(), cx.in_scope(name, &outcome.state.vars[name])))
        .collect();
    Ok((outcome.action, post, outcome.records))
}

fn action_name(action: u32) -> String {
    match action {
        1 => "XDP_DROP".to_string(),
        2 => "XDP_PASS".to_string(),
        other => format!("action {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Replayed = (
    u32,
    std::collections::BTreeMap<String, simplebpf_dsl::interp::Value>,
    Vec<(String, simplebpf_dsl::interp::Value)>,
);

fn verdict_text(verdict: &Verdict, replayed: Option<&Replayed>) -> String {
    match verdict {
        Verdict::Equivalent {
            ms,
            paths,
            assumptions,
        } => {
            let mut out = format!(
                "equivalent: proven for every input ({paths} program paths, {ms} ms)\nassumptions:\n"
            );
            for a in assumptions {
                out.push_str(&format!("  - {a}\n"));
            }
            out
        }
        Verdict::NotEquivalent {
            counterexample: cx,
            ms,
        } => {
            let (policy_action, policy_post, policy_records) = replayed.expect("replayed");
            let mut out = format!(
                "not equivalent: a counterexample, found by {} ({ms} ms)\n\ninputs\n",
                cx.found_by
            );
            out.push_str(&format!(
                "  packet ({} bytes)  {}\n",
                cx.packet.len(),
                hex(&cx.packet)
            ));
            out.push_str(&format!("  time              {} ns\n", cx.now));
            out.push_str(&format!("  draws             {:?}\n", cx.draws));
            for (name, value) in &cx.pre_state {
                out.push_str(&format!("  {name:<17} {value}\n"));
            }
            out.push_str(&format!(
                "\n{:<18} {:<24} {:<24}\n",
                "", "program", "policy"
            ));
            out.push_str(&format!(
                "{:<18} {:<24} {:<24}\n",
                "action",
                action_name(cx.program_action),
                action_name(*policy_action)
            ));
            for (name, value) in &cx.program_post {
                let expected = policy_post
                    .get(name)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let mark = if expected == value.to_string() {
                    ""
                } else {
                    "  <- differs"
                };
                out.push_str(&format!(
                    "{name:<18} {:<24} {expected:<24}{mark}\n",
                    value.to_string()
                ));
            }
            if !cx.program_records.is_empty() || !policy_records.is_empty() {
                let show = |records: &[(String, simplebpf_dsl::interp::Value)]| {
                    let shown: Vec<String> =
                        records.iter().map(|(v, x)| format!("{v} <- {x}")).collect();
                    shown.join(", ")
                };
                out.push_str(&format!(
                    "{:<18} {:<24} {:<24}\n",
                    "records",
                    show(&cx.program_records),
                    show(policy_records)
                ));
            }
            out
        }
        Verdict::Race {
            instruction,
            variable,
        } => format!(
            "not equivalent (race): instruction {instruction} writes `{variable}` after reading it, neither as one atomic instruction nor inside a bpf_spin_lock section; concurrent requests can lose updates\n"
        ),
        Verdict::Unknown { reason } => format!("unknown: {reason}\n"),
    }
}

fn verdict_json(verdict: &Verdict, replayed: Option<&Replayed>) -> serde_json::Value {
    match verdict {
        Verdict::Equivalent {
            ms,
            paths,
            assumptions,
        } => json!({
            "verdict": "equivalent", "ms": ms, "paths": paths, "assumptions": assumptions,
        }),
        Verdict::NotEquivalent {
            counterexample: cx,
            ms,
        } => {
            let (policy_action, policy_post, policy_records) = replayed.expect("replayed");
            let records = |list: &[(String, simplebpf_dsl::interp::Value)]| {
                list.iter()
                    .map(|(v, x)| json!([v, json::value(x)]))
                    .collect::<Vec<_>>()
            };
            let values =
                |map: &std::collections::BTreeMap<String, simplebpf_dsl::interp::Value>| {
                    map.iter()
                        .map(|(k, v)| (k.clone(), json::value(v)))
                        .collect::<serde_json::Map<_, _>>()
                };
            json!({
                "verdict": "not equivalent",
                "ms": ms,
                "counterexample": {
                    "packet": hex(&cx.packet),
                    "time_ns": cx.now,
                    "draws": cx.draws,
                    "pre_state": values(&cx.pre_state),
                    "program": { "action": action_name(cx.program_action), "state": values(&cx.program_post), "records": records(&cx.program_records) },
                    "policy": { "action": action_name(*policy_action), "state": values(policy_post), "records": records(policy_records) },
                    "replayed_in_interpreter": true,
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
