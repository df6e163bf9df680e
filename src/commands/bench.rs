//! `simplebpf bench`: every example built as `build` builds it (optimizer on), one row each:
//! instructions and time per packet before and after the optimizer, the proof's and the
//! build's time, and the SimpleBPF paper's numbers beside the programs it measured. The
//! README's benchmark table is this command's markdown.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{Value as Json, json};
use simplebpf_checker::Verdict;
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::kernel;
use simplebpf_compiler::measure::KernelNumbers;

use super::Outcome;
use super::build::policy_name;
use crate::pipeline::{self, BuildError, BuildOptions};
use crate::source::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum BenchFormat {
    /// A markdown table (readable as text).
    #[default]
    Markdown,
    /// One JSON object on stdout.
    Json,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Policies to build; by default `examples/bench/*.appnet`, then `examples/*.appnet`,
    /// from the current directory.
    #[arg(value_name = "POLICY")]
    pub policies: Vec<PathBuf>,
    /// The UDP port of the service.
    #[arg(long, value_name = "N", default_value_t = pipeline::DEFAULT_PORT, value_parser = super::port_parser())]
    pub port: u16,
    /// Seconds the optimizer may search, per policy.
    #[arg(long, value_name = "SECONDS", default_value_t = pipeline::DEFAULT_OPTIMIZE_BUDGET.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub optimize_budget: u64,
    #[arg(long, value_enum, default_value_t)]
    pub format: BenchFormat,
}

/// The SimpleBPF paper's Table 1: its rules backend's program and its LLM optimizer's, each
/// as (BPF instructions, x86 instructions after the JIT).
struct Paper {
    policy: &'static str,
    rules: (u32, u32),
    optimized: (u32, u32),
}

const PAPER: &[Paper] = &[
    Paper {
        policy: "logging",
        rules: (125, 141),
        optimized: (67, 67),
    },
    Paper {
        policy: "logging_fault",
        rules: (119, 145),
        optimized: (79, 101),
    },
    Paper {
        policy: "fault_condition",
        rules: (59, 76),
        optimized: (43, 56),
    },
];

/// One policy's numbers.
struct Row {
    policy: String,
    before_elf: usize,
    before: Option<KernelNumbers>,
    after_elf: usize,
    after: Option<KernelNumbers>,
    proven: bool,
    checker_ms: Option<u128>,
    build_ms: u128,
    winner: String,
}

pub fn bench(args: &BenchArgs, cancel: &Cancel) -> anyhow::Result<Outcome> {
    let policies = if args.policies.is_empty() {
        default_policies()?
    } else {
        args.policies.clone()
    };
    let options = BuildOptions {
        port: args.port,
        kernel_required: kernel::kernel_required(),
        cancel: cancel.clone(),
        optimize: Some(Duration::from_secs(args.optimize_budget)),
        ..BuildOptions::default()
    };
    let mut rows = Vec::new();
    for path in &policies {
        let file = SourceFile::read(path)?;
        let started = Instant::now();
        let built = match pipeline::build(&policy_name(path), &file.bytes, &options) {
            Ok(built) => built,
            Err(BuildError::Rejected(simplebpf_optimizer::Rejection::Interrupted)) => {
                return Ok(Outcome::Interrupted);
            }
            Err(err) => {
                return Err(anyhow::Error::new(err))
                    .with_context(|| format!("cannot build {}", path.display()));
            }
        };
        let report = &built.report;
        let optimizer = report.optimizer.as_ref().ok();
        rows.push(Row {
            policy: built.name.clone(),
            before_elf: optimizer.map_or(report.elf_insns, |o| o.before_elf),
            before: optimizer.and_then(|o| o.before_kernel.clone()),
            after_elf: report.elf_insns,
            after: report.numbers().cloned(),
            proven: report.proven(),
            checker_ms: match &report.verdict {
                Some(Verdict::Equivalent { ms, .. }) => Some(*ms),
                _ => None,
            },
            build_ms: started.elapsed().as_millis(),
            winner: optimizer.map_or_else(String::new, |o| o.winner.clone()),
        });
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        BenchFormat::Markdown => write!(stdout, "{}", markdown(&rows))?,
        BenchFormat::Json => writeln!(stdout, "{}", json_rows(&rows))?,
    }
    Ok(Outcome::Success)
}

fn default_policies() -> anyhow::Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for dir in ["examples/bench", "examples"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| {
                format!("cannot read {dir}: run from simplebpf's directory or name the policies")
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "appnet"))
            .collect();
        found.sort();
        all.extend(found);
    }
    Ok(all)
}

fn paper(policy: &str) -> Option<&'static Paper> {
    PAPER.iter().find(|p| p.policy == policy)
}

fn before_after<T: std::fmt::Display>(before: Option<T>, after: Option<T>) -> String {
    match (before, after) {
        (Some(before), Some(after)) => format!("{before} → {after}"),
        _ => "–".to_string(),
    }
}

fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| policy | ELF | xlated | JIT | ns/packet | checker ms | build ms | paper BPF/JIT (rules → LLM-optimized) | winner |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let sizes = |numbers: &Option<KernelNumbers>| numbers.as_ref().map(|n| n.sizes);
        let (before, after) = (sizes(&row.before), sizes(&row.after));
        let ns = |numbers: &Option<KernelNumbers>| {
            numbers.as_ref().map(|n| format!("{:.0}", n.ns_per_packet))
        };
        let paper = paper(&row.policy).map_or_else(
            || "–".to_string(),
            |p| {
                format!(
                    "{}/{} → {}/{}",
                    p.rules.0, p.rules.1, p.optimized.0, p.optimized.1
                )
            },
        );
        out.push_str(&format!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.policy,
            if row.proven { "" } else { " (UNPROVEN)" },
            before_after(Some(row.before_elf), Some(row.after_elf)),
            before_after(
                before.map(|s| s.xlated_insns),
                after.map(|s| s.xlated_insns)
            ),
            before_after(before.map(|s| s.jited_insns), after.map(|s| s.jited_insns)),
            before_after(ns(&row.before), ns(&row.after)),
            row.checker_ms
                .map_or_else(|| "–".to_string(), |ms| ms.to_string()),
            row.build_ms,
            paper,
            row.winner,
        ));
    }
    if rows.iter().any(|row| row.after.is_none()) {
        out.push_str("\n– : the kernel did not measure (no BPF privileges here).\n");
    }
    out
}

fn json_rows(rows: &[Row]) -> Json {
    let numbers = |elf: usize, kernel: &Option<KernelNumbers>| {
        json!({
            "elf": elf,
            "xlated": kernel.as_ref().map(|n| n.sizes.xlated_insns),
            "jited": kernel.as_ref().map(|n| n.sizes.jited_insns),
            "ns_per_packet": kernel.as_ref().map(|n| n.ns_per_packet),
        })
    };
    let policies: Vec<Json> = rows
        .iter()
        .map(|row| {
            json!({
                "policy": row.policy,
                "proven": row.proven,
                "before": numbers(row.before_elf, &row.before),
                "after": numbers(row.after_elf, &row.after),
                "checker_ms": row.checker_ms,
                "build_ms": row.build_ms,
                "winner": row.winner,
                "paper": paper(&row.policy).map(|p| json!({
                    "rules": { "bpf": p.rules.0, "jited": p.rules.1 },
                    "llm_optimized": { "bpf": p.optimized.0, "jited": p.optimized.1 },
                })),
            })
        })
        .collect();
    json!({ "policies": policies })
}
