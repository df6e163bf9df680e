//! The build report (`<name>.report.json`) and the table printed after a build. Field names
//! are stable; the README documents them.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use simplebpf_checker::Verdict;
use simplebpf_compiler::clang;
use simplebpf_compiler::contract::Place;
use simplebpf_compiler::measure::{self, KernelNumbers};
use simplebpf_optimizer::search::Searched;
use simplebpf_optimizer::{Gated, KernelOutcome, Reason};

use crate::backend::{BackendReport, Kind, LockUse};
use crate::outputs::sha256_hex;
use crate::pipeline::{BuildOptions, OutputPaths};
use crate::verdict;

#[derive(Debug, Clone)]
pub struct Report {
    pub policy: String,
    /// The XDP program's name in the object (the C function).
    pub program: String,
    pub port: u16,
    pub c_sha256: String,
    pub object_sha256: String,
    pub elf_insns: usize,
    pub kernel: KernelOutcome,
    pub clang_version: String,
    pub clang_flags: Vec<String>,
    pub float_scales: Vec<(String, String)>,
    pub state: Json,
    pub lock: bool,
    /// The checker's verdict on the object (equivalent, unless `--allow-unproven` wrote it).
    pub verdict: Option<Verdict>,
    /// Which producer wrote the C, and how its conversations went.
    pub backend: BackendReport,
    /// What the optimizer's search did, or why it did not run.
    pub optimizer: Result<OptimizerReport, &'static str>,
}

/// The optimizer's search, as the report tells it (docs/json.md).
#[derive(Debug, Clone)]
pub struct OptimizerReport {
    /// The program before optimization: ELF instructions and the kernel's numbers.
    pub before_elf: usize,
    pub before_kernel: Option<KernelNumbers>,
    pub candidates: usize,
    pub accepted: usize,
    pub rejected: BTreeMap<Reason, usize>,
    pub untried: usize,
    /// The winning variant (`filter=fused -O2`), or `llm round N`.
    pub winner: String,
    pub ms: u64,
    /// The LLM optimizer's conversation, when `--llm-optimize` asked for it.
    pub llm: Option<LlmOptimizerReport>,
}

/// The LLM optimizer's part of the `optimizer` section.
#[derive(Debug, Clone)]
pub struct LlmOptimizerReport {
    pub url: Option<String>,
    pub model: Option<String>,
    pub rounds: Vec<simplebpf_optimizer::llm::Round>,
}

impl OptimizerReport {
    pub fn new(searched: &Searched) -> OptimizerReport {
        OptimizerReport {
            before_elf: searched.before.elf_insns,
            before_kernel: searched.before.kernel.numbers().cloned(),
            candidates: searched.candidates,
            accepted: searched.accepted,
            rejected: searched.rejected.clone(),
            untried: searched.untried,
            winner: searched.winner_description(),
            ms: searched.elapsed.as_millis() as u64,
            llm: None,
        }
    }
}

impl Report {
    pub fn new(policy: &str, options: &BuildOptions, gated: &Gated) -> Report {
        let contract = gated.contract.as_ref();
        let state = contract
            .map(|contract| {
                contract
                    .vars
                    .iter()
                    .map(|var| {
                        let mut entry = json!({ "name": var.name, "type": var.ty.to_string() });
                        match &var.place {
                            Place::Global(global) => {
                                entry["storage"] = json!("global");
                                entry["section"] = json!(global.section);
                            }
                            Place::Constant(value) => {
                                entry["storage"] = json!("constant");
                                entry["value"] = json!(value.to_string());
                            }
                            Place::HashMap { .. } => entry["storage"] = json!("hash map"),
                            Place::RingBuf { .. } => entry["storage"] = json!("ring buffer"),
                        }
                        if let Some(scale) = &var.scale {
                            entry["scale"] = json!(scale.to_string());
                        }
                        entry
                    })
                    .collect()
            })
            .unwrap_or_default();
        Report {
            policy: policy.to_string(),
            program: gated.program.clone(),
            port: options.port,
            c_sha256: sha256_hex(gated.c_source.as_deref().unwrap_or_default().as_bytes()),
            object_sha256: sha256_hex(&gated.elf),
            elf_insns: gated.elf_insns,
            kernel: gated.kernel.clone(),
            clang_version: clang::version(&options.clang.binary)
                .unwrap_or_else(|err| err.to_string()),
            clang_flags: options.clang.flags(),
            float_scales: contract
                .map(|c| c.float_scales())
                .unwrap_or_default()
                .into_iter()
                .map(|(name, scale)| (name, scale.to_string()))
                .collect(),
            state: Json::Array(state),
            lock: contract.is_some_and(|c| c.lock.is_some()),
            verdict: gated.verdict.clone(),
            backend: BackendReport::rules(),
            optimizer: Err("not run"),
        }
    }

    /// JIT instructions before optimization, when the optimizer ran and the kernel measured.
    pub fn jited_before(&self) -> Option<u32> {
        let before = self.optimizer.as_ref().ok()?.before_kernel.as_ref()?;
        Some(before.sizes.jited_insns)
    }

    pub fn proven(&self) -> bool {
        matches!(self.verdict, Some(Verdict::Equivalent { .. }))
    }

    /// The kernel's numbers, when it measured the program.
    pub fn numbers(&self) -> Option<&KernelNumbers> {
        self.kernel.numbers()
    }

    fn checker_json(&self) -> Json {
        let Some(verdict) = &self.verdict else {
            return json!({ "verdict": "not run" });
        };
        let mut section = verdict::json(verdict, None, None);
        let warning = match verdict {
            Verdict::Equivalent { .. } => None,
            Verdict::Race { .. } => Some(
                "UNPROVEN: written because of --allow-unproven; concurrent requests can lose updates",
            ),
            Verdict::NotEquivalent { .. } => Some(
                "UNPROVEN: written because of --allow-unproven; the program differs from the policy",
            ),
            Verdict::Unknown { .. } => Some("UNPROVEN: written because of --allow-unproven"),
        };
        if let Some(warning) = warning {
            section["warning"] = json!(warning);
        }
        if section.get("assumptions").is_none() {
            section["assumptions"] = json!([]);
        }
        section
    }

    pub fn to_json(&self, paths: &OutputPaths) -> Json {
        let facts = measure::kernel_facts();
        let numbers = self.numbers();
        let kernel_note = match &self.kernel {
            KernelOutcome::Measured(_) | KernelOutcome::Verified => None,
            KernelOutcome::NotAsked => Some("--no-kernel".to_string()),
            KernelOutcome::NotPermitted(reason) => Some(reason.clone()),
        };
        let scales: serde_json::Map<String, Json> = self
            .float_scales
            .iter()
            .map(|(name, scale)| (name.clone(), json!(scale)))
            .collect();
        json!({
            "policy": self.policy,
            "program": self.program,
            "port": self.port,
            "outputs": {
                "c": paths.c.display().to_string(),
                "object": paths.object.display().to_string(),
                "c_sha256": self.c_sha256,
                "object_sha256": self.object_sha256,
            },
            "insns": {
                "elf": self.elf_insns,
                "xlated": numbers.map(|n| n.sizes.xlated_insns),
                "jited": numbers.map(|n| n.sizes.jited_insns),
            },
            "bytes": numbers.map(|n| json!({ "xlated": n.sizes.xlated_bytes, "jited": n.sizes.jited_bytes })),
            "verifier": {
                "accepted": numbers.map(|_| true),
                "verified_insns": numbers.map(|n| n.sizes.verified_insns),
                "log": Json::Null,
            },
            "runtime_ns_per_packet": numbers.map(|n| n.ns_per_packet),
            "runtime": {
                "packet": format!("Ethernet + IPv4 + UDP to port {}, {} payload bytes", self.port, measure::PAYLOAD_LEN),
                "repeat": measure::REPEAT,
                "runs": measure::RUNS,
                "statistic": "median of the runs' mean ns per packet",
            },
            "kernel": {
                "used": kernel_note.is_none(),
                "skipped_because": kernel_note,
                "release": facts.release,
                "bpf_jit_harden": facts.jit_harden,
            },
            "toolchain": {
                "clang": self.clang_version,
                "flags": self.clang_flags,
                "kernel_release": facts.release,
                "simplebpf": env!("CARGO_PKG_VERSION"),
            },
            "float_scales": scales,
            "state": self.state,
            "spin_lock": self.lock,
            "checker": self.checker_json(),
            "backend": backend_json(&self.backend),
            "optimizer": self.optimizer_json(),
        })
    }

    fn optimizer_json(&self) -> Json {
        let optimizer = match &self.optimizer {
            Ok(optimizer) => optimizer,
            Err(why) => return json!({ "ran": false, "because": why }),
        };
        let numbers = |elf: usize, kernel: Option<&KernelNumbers>| {
            json!({
                "elf": elf,
                "xlated": kernel.map(|n| n.sizes.xlated_insns),
                "jited": kernel.map(|n| n.sizes.jited_insns),
                "ns_per_packet": kernel.map(|n| n.ns_per_packet),
            })
        };
        let rejected: serde_json::Map<String, Json> = optimizer
            .rejected
            .iter()
            .map(|(reason, count)| (reason.name().to_string(), json!(count)))
            .collect();
        json!({
            "ran": true,
            "objective": if self.numbers().is_some() { "jited" } else { "elf (no kernel numbers)" },
            "before": numbers(optimizer.before_elf, optimizer.before_kernel.as_ref()),
            "after": numbers(self.elf_insns, self.numbers()),
            "candidates": optimizer.candidates,
            "accepted": optimizer.accepted,
            "rejected": rejected,
            "untried_for_budget": optimizer.untried,
            "winner": optimizer.winner,
            "ms": optimizer.ms,
            "llm": optimizer.llm.as_ref().map(|llm| json!({
                "url": llm.url,
                "model": llm.model,
                "rounds": rounds_json(&llm.rounds),
            })),
        })
    }
}

/// The report's `backend` section (docs/json.md).
pub fn backend_json(backend: &BackendReport) -> Json {
    let (lock, lock_path, stale_because) = match &backend.lock {
        LockUse::None => ("none", None, None),
        LockUse::Used(path) => ("used", Some(path), None),
        LockUse::Written(path) => ("written", Some(path), None),
        LockUse::Stale { path, why } => ("stale", Some(path), Some(why.to_string())),
    };
    json!({
        "kind": match backend.kind { Kind::Rules => "rules", Kind::Llm => "llm" },
        "fallback": backend.fallback,
        "model": backend.model,
        "url": backend.url,
        "prompt_sha256": backend.prompt_sha256,
        "lock": lock,
        "lock_path": lock_path.map(|p| p.display().to_string()),
        "lock_stale_because": stale_because,
        "rounds": rounds_json(&backend.rounds),
    })
}

/// One entry per answer.
pub fn rounds_json(rounds: &[simplebpf_optimizer::llm::Round]) -> Json {
    Json::Array(
        rounds
            .iter()
            .map(|round| {
                json!({
                    "sample": round.sample,
                    "round": round.round,
                    "outcome": round.outcome.name(),
                    "ms": round.ms,
                    "prompt_tokens": round.usage.and_then(|u| u.prompt_tokens),
                    "completion_tokens": round.usage.and_then(|u| u.completion_tokens),
                    "detail": round.outcome.detail(),
                })
            })
            .collect(),
    )
}

/// One row of the table `build` and `stats` print.
#[derive(Debug)]
pub struct Row<'a> {
    pub name: String,
    pub elf: usize,
    pub kernel: Option<&'a KernelNumbers>,
    /// `Some(true)` proven, `Some(false)` unproven, `None` not checked (`stats`).
    pub proven: Option<bool>,
    /// Which producer wrote it (`build`): `rules`, `llm (round 2)`, `rules (fallback)`.
    pub backend: Option<String>,
    /// JIT instructions before the optimizer (shown as `before→after`).
    pub jited_before: Option<u32>,
}

/// The compact table `build` and `stats` print.
pub fn table(rows: &[Row<'_>]) -> String {
    let with_backend = rows.iter().any(|row| row.backend.is_some());
    let mut out = format!(
        "{:<24} {:>6} {:>8} {:>8}  {:<9} {:>10}  {:<8}",
        "program", "ELF", "xlated", "JIT", "verifier", "ns/packet", "checker"
    );
    if with_backend {
        out.push_str("  backend");
    }
    let mut out = out.trim_end().to_string();
    out.push('\n');
    for row in rows {
        let proof = match row.proven {
            Some(true) => "proven",
            Some(false) => "UNPROVEN",
            None => "-",
        };
        let proof = match &row.backend {
            Some(backend) => format!("{proof:<8}  {backend}"),
            None => proof.to_string(),
        };
        match row.kernel {
            Some(n) => {
                let jited = match row.jited_before {
                    Some(before) => format!("{before}→{}", n.sizes.jited_insns),
                    None => n.sizes.jited_insns.to_string(),
                };
                out.push_str(&format!(
                    "{:<24} {:>6} {:>8} {:>8}  {:<9} {:>10.1}  {proof}\n",
                    row.name, row.elf, n.sizes.xlated_insns, jited, "accepted", n.ns_per_packet
                ))
            }
            None => out.push_str(&format!(
                "{:<24} {:>6} {:>8} {:>8}  {:<9} {:>10}  {proof}\n",
                row.name, row.elf, "-", "-", "not run", "-"
            )),
        }
    }
    out
}

/// How many lines of the verifier's log to show; the whole log is long and its end says why.
const LOG_TAIL: usize = 25;

/// The end of a verifier log, with a header saying how much of it is shown.
pub fn verifier_log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
    format!(
        "--- verifier log (last {} of {} lines) ---\n{}",
        tail.len(),
        lines.len(),
        tail.join("\n")
    )
}
