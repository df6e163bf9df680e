//! `simplebpf stats`: the build's measurements for any XDP object, hand-written ones included.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::kernel;
use simplebpf_compiler::measure;
use simplebpf_optimizer::{
    Candidate, GateOptions, KernelOutcome, KernelUse, Origin, Rejection, Source,
};

use super::Outcome;
use crate::interrupt::ScratchDir;
use crate::output::Format;
use crate::pipeline;
use crate::report;
use crate::source::{MAX_PROGRAM_BYTES, read_capped};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A BPF ELF object with an XDP program.
    #[arg(value_name = "OBJECT")]
    pub object: PathBuf,
    /// The XDP program to measure, by name, when the object has several.
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// The UDP port (1-65535) of the representative packet used for timing.
    #[arg(long, value_name = "N", default_value_t = pipeline::DEFAULT_PORT, value_parser = super::port_parser())]
    pub port: u16,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn stats(args: &StatsArgs, cancel: &Cancel) -> anyhow::Result<Outcome> {
    let elf = read_capped(&args.object, MAX_PROGRAM_BYTES, "BPF object")?;
    let what = || args.object.display().to_string();
    let scratch = ScratchDir::new().context("cannot create a scratch directory")?;
    let options = GateOptions {
        port: args.port,
        kernel: KernelUse::Verify { measure: true },
        kernel_required: kernel::kernel_required(),
        cancel: cancel.clone(),
        ..GateOptions::default()
    };
    let candidate = Candidate {
        source: Source::Elf(elf),
        origin: Origin::File(args.object.clone()),
        program: args.prog.clone(),
    };
    let gated = match simplebpf_optimizer::gate(candidate, None, &options, scratch.path()) {
        Ok(gated) => gated,
        Err(Rejection::Interrupted) => return Ok(Outcome::Interrupted),
        Err(Rejection::Verifier { log }) => {
            eprintln!(
                "error: the kernel verifier rejected {}\n{}",
                what(),
                report::verifier_log_tail(&log)
            );
            return Ok(Outcome::InputErrors);
        }
        Err(err) => return Err(err).with_context(what),
    };
    let numbers = match &gated.kernel {
        KernelOutcome::Measured(numbers) => Some(numbers),
        KernelOutcome::NotPermitted(reason) => {
            eprintln!("note: {reason}; reporting static numbers only");
            None
        }
        KernelOutcome::Verified | KernelOutcome::NotAsked => None,
    };
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let facts = measure::kernel_facts();
            let value = json!({
                "object": what(),
                "program": gated.program,
                "insns": {
                    "elf": gated.elf_insns,
                    "xlated": numbers.map(|n| n.sizes.xlated_insns),
                    "jited": numbers.map(|n| n.sizes.jited_insns),
                },
                "bytes": numbers.map(|n| json!({ "xlated": n.sizes.xlated_bytes, "jited": n.sizes.jited_bytes })),
                "verifier": { "accepted": numbers.map(|_| true), "verified_insns": numbers.map(|n| n.sizes.verified_insns) },
                "runtime_ns_per_packet": numbers.map(|n| n.ns_per_packet),
                "kernel": { "release": facts.release, "bpf_jit_harden": facts.jit_harden },
            });
            writeln!(stdout, "{value}")?;
        }
        Format::Text => {
            write!(
                stdout,
                "{}",
                report::table(&[report::Row {
                    name: gated.program.clone(),
                    elf: gated.elf_insns,
                    kernel: numbers,
                    proven: None,
                    backend: None,
                    jited_before: None,
                }])
            )?;
            if let Some(n) = numbers {
                writeln!(
                    stdout,
                    "bytes: xlated {} JIT {}",
                    n.sizes.xlated_bytes, n.sizes.jited_bytes
                )?;
            }
        }
    }
    Ok(Outcome::Success)
}
