//! Attaches a policy's proven XDP program (built by `build.rs` with `simplebpf::Builder`) to
//! an interface with aya, writes the policy's `init` values, prints its state every interval
//! in the policy's words, and detaches cleanly on Ctrl-C or SIGTERM.
//!
//! ```sh
//! sudo target/release/simplebpf-loader --iface eth0 --mode skb
//! ```

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aya::Ebpf;
use aya::programs::{Xdp, XdpMode};
use clap::{Parser, ValueEnum};

include!(concat!(env!("OUT_DIR"), "/logging_fault.rs"));
include!(concat!(env!("OUT_DIR"), "/logging.rs"));
include!(concat!(env!("OUT_DIR"), "/ratelimit.rs"));
include!(concat!(env!("OUT_DIR"), "/acl.rs"));
include!(concat!(env!("OUT_DIR"), "/sizes.rs"));

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The interface to attach to.
    #[arg(long, value_name = "NAME")]
    iface: String,
    /// `skb`: generic XDP, works on every interface; `drv`: in the driver, where it has
    /// XDP support.
    #[arg(long, value_enum, default_value_t = Mode::Skb)]
    mode: Mode,
    /// Which of the policies built by build.rs.
    #[arg(long, value_enum, default_value_t = Policy::LoggingFault)]
    policy: Policy,
    /// How often the state is printed.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    interval_ms: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Skb,
    Drv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    LoggingFault,
    Logging,
    Ratelimit,
    Acl,
    Sizes,
}

/// One built policy: its object and its generated state functions.
struct Built<S> {
    object: &'static [u8],
    program: &'static str,
    jited: Option<u32>,
    write_init: fn(&mut Ebpf, u64) -> Result<(), StateErrorOf>,
    read: fn(&Ebpf) -> Result<S, StateErrorOf>,
}

/// Each generated module has its own error type; the loader only prints them.
type StateErrorOf = Box<dyn std::error::Error + Send + Sync>;

macro_rules! built {
    ($module:ident) => {
        Built {
            object: $module::OBJECT,
            program: $module::PROGRAM,
            jited: $module::INSNS_AFTER.jited,
            write_init: |ebpf, now| Ok($module::write_init(ebpf, now)?),
            read: |ebpf| Ok($module::State::read(ebpf)?),
        }
    };
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.policy {
        Policy::LoggingFault => run(&args, built!(logging_fault)),
        Policy::Logging => run(&args, built!(logging)),
        Policy::Ratelimit => run(&args, built!(ratelimit)),
        Policy::Acl => run(&args, built!(acl)),
        Policy::Sizes => run(&args, built!(sizes)),
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: what the program's `bpf_ktime_get_ns` reads.
fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

fn run<S: Display>(args: &Args, built: Built<S>) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let mut ebpf = Ebpf::load(built.object).context("cannot load the object")?;
    (built.write_init)(&mut ebpf, monotonic_ns())
        .map_err(|error| anyhow::anyhow!("cannot write the policy's init values: {error}"))?;
    let mode = match args.mode {
        Mode::Skb => XdpMode::Skb,
        Mode::Drv => XdpMode::Driver,
    };
    let link = {
        let program: &mut Xdp = ebpf
            .program_mut(built.program)
            .with_context(|| format!("the object has no program {}", built.program))?
            .try_into()?;
        program
            .load()
            .context("the kernel verifier rejected the program")?;
        program
            .attach(&args.iface, mode)
            .with_context(|| format!("cannot attach to {}", args.iface))?
    };
    let jited = built
        .jited
        .map(|n| format!(", {n} JIT instructions when built"))
        .unwrap_or_default();
    println!(
        "attached {} to {} ({:?} mode; proven{jited})",
        built.program, args.iface, args.mode
    );
    let interval = Duration::from_millis(args.interval_ms);
    let mut next = Instant::now() + interval;
    let mut outcome = Ok(());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10).min(interval));
        if Instant::now() < next {
            continue;
        }
        next += interval;
        match (built.read)(&ebpf) {
            Ok(state) => println!("{state}"),
            Err(error) => {
                outcome = Err(anyhow::anyhow!("cannot read the state: {error}"));
                break;
            }
        }
    }
    let program: &mut Xdp = ebpf
        .program_mut(built.program)
        .context("the program went away")?
        .try_into()?;
    program.detach(link).context("cannot detach")?;
    match (built.read)(&ebpf) {
        Ok(state) => println!("detached; final: {state}"),
        Err(error) => bail!("detached; cannot read the final state: {error}"),
    }
    outcome
}
