//! `simplebpf run`: one invocation of `req` in the reference interpreter.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use simplebpf_dsl::ast::HandlerKind;
use simplebpf_dsl::interp::{self, Action, Inputs, Request, Value};

use super::Outcome;

/// The largest UDP payload: a 65535-byte length field less the 8-byte header.
const MAX_PAYLOAD: u64 = 65_535 - 8;
use crate::json;
use crate::output::{self, Format};
use crate::source::SourceFile;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// The RPC message size in bytes: what `byte_size(rpc, _)` returns (0-65527, what a UDP
    /// datagram can carry).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=MAX_PAYLOAD))]
    pub payload_len: u64,
    /// The random draws, uniform 32-bit values, in the order `randomf` consumes them.
    #[arg(long, value_name = "U32,...", value_delimiter = ',')]
    pub draws: Vec<u32>,
    /// `current_time()` of the invocation, in nanoseconds.
    #[arg(long, value_name = "NS")]
    pub time: u64,
    /// `current_time()` inside `init`, in nanoseconds.
    #[arg(long, value_name = "NS", default_value_t = 0)]
    pub load_time: u64,
    /// Overrides a state variable after `init` (`name=value`; floats exact: `0.95`, `1/3`;
    /// Instants in ns; a vector's length as a number). Repeatable.
    #[arg(long = "state", value_name = "NAME=VALUE")]
    pub state: Vec<String>,
    /// `text` for people (on stdout, diagnostics on stderr), `json` for tools (on stdout).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: &RunArgs) -> anyhow::Result<Outcome> {
    if args.time < args.load_time {
        bail!(
            "--time {} is before --load-time {}: time never goes backwards",
            args.time,
            args.load_time
        );
    }
    let file = SourceFile::read(&args.policy)?;
    let analysis = simplebpf_dsl::analyze_bytes(&file.bytes);
    let Some(program) = analysis.ir.as_ref() else {
        output::diagnostics(&file, &analysis.diagnostics, args.format);
        return Ok(Outcome::InputErrors);
    };
    let mut diagnostics = analysis.diagnostics.clone();
    let refusals = simplebpf_dsl::refusals(program);
    let refused = !refusals.is_empty();
    diagnostics.extend(refusals);
    output::diagnostics(&file, &diagnostics, args.format);
    if refused {
        return Ok(Outcome::InputErrors);
    }

    let loaded =
        interp::load(program, &args.draws, args.load_time).map_err(|e| anyhow!("init: {e}"))?;
    let mut state = loaded.state;
    for assignment in &args.state {
        let (name, text) = assignment
            .split_once('=')
            .with_context(|| format!("--state {assignment}: expected NAME=VALUE"))?;
        let id = program.state_id(name).with_context(|| {
            format!("--state {assignment}: the policy has no state variable `{name}`")
        })?;
        let value = Value::parse(&program.state_var(id).ty, text)
            .map_err(|e| anyhow!("--state {assignment}: {e}"))?;
        state
            .set(program, name, value)
            .map_err(|e| anyhow!("--state {assignment}: {e}"))?;
    }
    let inputs = Inputs {
        request: Request {
            payload_len: args.payload_len,
        },
        draws: &args.draws[loaded.draws_used..],
        time_ns: args.time,
    };
    let mut outcome =
        interp::run(program, HandlerKind::Req, &state, &inputs).map_err(|e| anyhow!("req: {e}"))?;
    outcome.draws_used += loaded.draws_used;

    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{}", json::outcome(&outcome))?,
        Format::Text => {
            match &outcome.action {
                Action::Forward => writeln!(stdout, "action: forward")?,
                Action::Reject { reason } => writeln!(stdout, "action: reject '{reason}'")?,
            }
            writeln!(stdout, "draws used: {}", outcome.draws_used)?;
            writeln!(stdout, "state:")?;
            for (name, value) in &outcome.state.vars {
                writeln!(stdout, "  {name} = {value}")?;
            }
            for record in &outcome.records {
                writeln!(stdout, "record: {} <- {}", record.vec, record.value)?;
            }
        }
    }
    Ok(Outcome::Success)
}
