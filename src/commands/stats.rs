//! `simplebpf stats`: the build's measurements for any XDP object, hand-written ones included.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use simplebpf_compiler::kernel::{self, KernelError, LoadedProgram};
use simplebpf_compiler::measure;
use simplebpf_compiler::object_model::BpfObject;

use super::Outcome;
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

pub fn stats(args: &StatsArgs) -> anyhow::Result<Outcome> {
    let elf = read_capped(&args.object, MAX_PROGRAM_BYTES, "BPF object")?;
    let what = || args.object.display().to_string();
    let object = BpfObject::parse(&elf).with_context(what)?;
    let program = object
        .xdp_program(args.prog.as_deref())
        .with_context(what)?;
    let elf_insns = program.elf_instruction_count();
    let numbers = match LoadedProgram::load(&elf, Some(&program.name)) {
        Ok(loaded) => Some(measure::measure(&loaded, args.port)?),
        Err(KernelError::Rejected { log }) => {
            eprintln!(
                "error: the kernel verifier rejected {}\n{}",
                args.object.display(),
                report::verifier_log_tail(&log)
            );
            return Ok(Outcome::InputErrors);
        }
        Err(err) if err.is_missing_capability() && !kernel::kernel_required() => {
            eprintln!("note: {err}; reporting static numbers only");
            None
        }
        Err(err) => bail!(err),
    };
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let facts = measure::kernel_facts();
            let value = json!({
                "object": args.object.display().to_string(),
                "program": program.name,
                "insns": {
                    "elf": elf_insns,
                    "xlated": numbers.as_ref().map(|n| n.sizes.xlated_insns),
                    "jited": numbers.as_ref().map(|n| n.sizes.jited_insns),
                },
                "bytes": numbers.as_ref().map(|n| json!({ "xlated": n.sizes.xlated_bytes, "jited": n.sizes.jited_bytes })),
                "verifier": { "accepted": numbers.as_ref().map(|_| true), "verified_insns": numbers.as_ref().map(|n| n.sizes.verified_insns) },
                "runtime_ns_per_packet": numbers.as_ref().map(|n| n.ns_per_packet),
                "kernel": { "release": facts.release, "bpf_jit_harden": facts.jit_harden },
            });
            writeln!(stdout, "{value}")?;
        }
        Format::Text => {
            write!(
                stdout,
                "{}",
                report::table(&[report::Row {
                    name: program.name.clone(),
                    elf: elf_insns,
                    kernel: numbers.as_ref(),
                    proven: None,
                }])
            )?;
            if let Some(n) = &numbers {
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
