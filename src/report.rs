//! The build report (`<name>.report.json`) and the table printed after a build. Field names
//! are stable; the README documents them.

use serde_json::{Value as Json, json};
use simplebpf_checker::Verdict;
use simplebpf_compiler::backend::Emitted;
use simplebpf_compiler::clang;
use simplebpf_compiler::contract::{Contract, Place};
use simplebpf_compiler::measure::{self, KernelNumbers};

use crate::outputs::sha256_hex;
use crate::pipeline::{BuildOptions, OutputPaths};

/// What the checker said about the object, or why it was not asked.
#[derive(Debug, Clone)]
pub enum CheckerSection {
    Checked(Verdict),
    NotRun(String),
}

impl CheckerSection {
    pub fn proven(&self) -> bool {
        matches!(self, CheckerSection::Checked(Verdict::Equivalent { .. }))
    }

    fn to_json(&self) -> Json {
        match self {
            CheckerSection::Checked(Verdict::Equivalent {
                ms,
                paths,
                assumptions,
            }) => json!({
                "verdict": "equivalent", "ms": ms, "paths": paths, "assumptions": assumptions,
            }),
            CheckerSection::Checked(Verdict::NotEquivalent { ms, .. }) => json!({
                "verdict": "not equivalent", "ms": ms, "assumptions": [],
                "warning": "UNPROVEN: written because of --allow-unproven; the program differs from the policy",
            }),
            CheckerSection::Checked(Verdict::Race {
                instruction,
                variable,
            }) => json!({
                "verdict": "not equivalent", "reason": "race", "instruction": instruction,
                "variable": variable, "assumptions": [],
                "warning": "UNPROVEN: written because of --allow-unproven; concurrent requests can lose updates",
            }),
            CheckerSection::Checked(Verdict::Unknown { reason }) => json!({
                "verdict": "unknown", "ms": Json::Null, "reason": reason, "assumptions": [],
                "warning": "UNPROVEN: written because of --allow-unproven",
            }),
            CheckerSection::NotRun(reason) => json!({ "verdict": "not run", "reason": reason }),
        }
    }
}

/// What the kernel said, or why it was not asked.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelSection {
    Measured(KernelNumbers),
    Skipped(String),
}

impl KernelSection {
    pub fn measured(numbers: KernelNumbers) -> KernelSection {
        KernelSection::Measured(numbers)
    }

    pub fn skipped(reason: &str) -> KernelSection {
        KernelSection::Skipped(reason.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub policy: String,
    /// The XDP program's name in the object (the C function).
    pub program: String,
    pub port: u16,
    pub c_sha256: String,
    pub object_sha256: String,
    pub elf_insns: usize,
    pub kernel: KernelSection,
    pub clang_version: String,
    pub clang_flags: Vec<String>,
    pub float_scales: Vec<(String, String)>,
    pub state: Json,
    pub lock: bool,
    pub checker: CheckerSection,
}

impl Report {
    pub fn new(
        policy: &str,
        options: &BuildOptions,
        emitted: &Emitted,
        contract: &Contract,
        elf: &[u8],
        elf_insns: usize,
        kernel: KernelSection,
        checker: CheckerSection,
    ) -> Report {
        let state = contract
            .vars
            .iter()
            .map(|var| {
                let mut entry = json!({
                    "name": var.name,
                    "type": var.ty.to_string(),
                });
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
            .collect();
        Report {
            policy: policy.to_string(),
            program: emitted.function.clone(),
            port: options.port,
            c_sha256: sha256_hex(emitted.c_source.as_bytes()),
            object_sha256: sha256_hex(elf),
            elf_insns,
            kernel,
            clang_version: clang::version().unwrap_or_else(|err| err.to_string()),
            clang_flags: options.clang.flags(),
            float_scales: contract
                .float_scales()
                .into_iter()
                .map(|(name, scale)| (name, scale.to_string()))
                .collect(),
            state: Json::Array(state),
            lock: contract.lock.is_some(),
            checker,
        }
    }

    pub fn to_json(&self, paths: &OutputPaths) -> Json {
        let facts = measure::kernel_facts();
        let (xlated, jited, accepted, verified, bytes, ns, kernel_note) = match &self.kernel {
            KernelSection::Measured(n) => (
                json!(n.sizes.xlated_insns),
                json!(n.sizes.jited_insns),
                json!(true),
                json!(n.sizes.verified_insns),
                json!({ "xlated": n.sizes.xlated_bytes, "jited": n.sizes.jited_bytes }),
                json!(n.ns_per_packet),
                Json::Null,
            ),
            KernelSection::Skipped(reason) => (
                Json::Null,
                Json::Null,
                Json::Null,
                Json::Null,
                Json::Null,
                Json::Null,
                json!(reason),
            ),
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
            "insns": { "elf": self.elf_insns, "xlated": xlated, "jited": jited },
            "bytes": bytes,
            "verifier": { "accepted": accepted, "verified_insns": verified, "log": Json::Null },
            "runtime_ns_per_packet": ns,
            "runtime": {
                "packet": format!("Ethernet + IPv4 + UDP to port {}, {} payload bytes", self.port, measure::PAYLOAD_LEN),
                "repeat": measure::REPEAT,
                "runs": measure::RUNS,
                "statistic": "median of the runs' mean ns per packet",
            },
            "kernel": {
                "used": kernel_note.is_null(),
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
            "checker": self.checker.to_json(),
        })
    }
}

/// One row of the table `build` and `stats` print.
#[derive(Debug)]
pub struct Row<'a> {
    pub name: String,
    pub elf: usize,
    pub kernel: Option<&'a KernelNumbers>,
    /// `Some(true)` proven, `Some(false)` unproven, `None` not checked (`stats`).
    pub proven: Option<bool>,
}

/// The compact table `build` and `stats` print.
pub fn table(rows: &[Row<'_>]) -> String {
    let mut out = format!(
        "{:<24} {:>6} {:>8} {:>6}  {:<9} {:>10}  {}\n",
        "program", "ELF", "xlated", "JIT", "verifier", "ns/packet", "checker"
    );
    for row in rows {
        let proof = match row.proven {
            Some(true) => "proven",
            Some(false) => "UNPROVEN",
            None => "-",
        };
        match row.kernel {
            Some(n) => out.push_str(&format!(
                "{:<24} {:>6} {:>8} {:>6}  {:<9} {:>10.1}  {proof}\n",
                row.name,
                row.elf,
                n.sizes.xlated_insns,
                n.sizes.jited_insns,
                "accepted",
                n.ns_per_packet
            )),
            None => out.push_str(&format!(
                "{:<24} {:>6} {:>8} {:>6}  {:<9} {:>10}  {proof}\n",
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
