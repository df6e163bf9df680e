//! How one query is answered: which solvers, in which Z3 contexts, on which threads, and
//! what each may spend.
//!
//! No solver runs in the context of the checker's own thread, which holds the policy and
//! the program: the bit-vector solvers run on a worker thread in that thread's context, one
//! worker per check; each integer attempt gets a context of its own. Because:
//! - Z3 4.8.12 can leave a context cancelled for good when it is interrupted just as a check
//!   ends (its interrupt handler is not atomic); every later call in that context then fails
//!   (seen here as a failed `simplify` in the next check's symbolic execution). Stopping the
//!   losing solver of a race must not break the context the checker goes on using, so only
//!   contexts that are then thrown away are ever interrupted.
//! - An integer attempt ends by its own wall clock, which Z3 ends through the same handler;
//!   a context of its own per attempt leaves nothing behind either way.
//!
//! The query crosses into the solvers' contexts by translation, and a model back out.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use simplebpf_compiler::cancel::Cancel;
use z3::ast::{BV, Bool, Dynamic};
use z3::{Params, PrepareSynchronized, SatResult, Solver, Synchronized};

use crate::integer;
use crate::interrupt::{self, without_ctrl_c};
use crate::query::Options;
use crate::symexec::Inputs;

/// Counterexamples are first looked for among frames this short.
const SMALL_PACKET: u64 = 128;

/// A wall-clock net under the integer step alone. Its resource units do not bound its time:
/// measured here, one query spent 1.4 million units in 10 s, another 5 million in 1.5 s.
/// Where it proves, it takes under 2 s here; past this it gives way to the bit-vectors,
/// which are where the budget, not the clock, decides.
const INTEGER_WALL: Duration = Duration::from_secs(10);

/// The resource units the integer translation of a query may use (CHECKER-NOTES §1).
const INTEGER_BUDGET: u64 = 5_000_000;

pub(crate) enum Answer {
    Unsat,
    /// A model in the calling thread's context.
    Sat(z3::Model),
    Unknown,
}

/// A model on its way out of the context it was found in.
enum Found {
    Unsat,
    Sat(Synchronized<z3::Model>),
    Unknown,
}

/// The solvers of one check. The bit-vector solvers live on a thread of their own for the
/// whole check (measured on a loaded machine: eight token buckets proved in 24 s this way,
/// in 29 s with a new context per query); a worker whose context was interrupted is replaced.
///
/// The integer step of a query runs on a thread of its own that the query does not wait
/// for once the bit-vectors have answered: stopped then, it can still take up to its
/// attempt's clock to notice (measured: an interrupt at 0.44 s, the attempt ending at its
/// 0.75 s clock plus 0.14 s), and it costs even a fast query the 30 ms the attempt takes
/// to set up its context. The next query's integer step joins it before it starts, and the
/// check joins the last when it ends: at most one runs at a time.
pub(crate) struct Solving {
    bits: Option<BitsWorker>,
    integer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Solving {
    fn drop(&mut self) {
        if let Some(integer) = self.integer.take() {
            let _ = integer.join();
        }
    }
}

impl Solving {
    pub(crate) fn new() -> Solving {
        Solving {
            bits: None,
            integer: None,
        }
    }

    /// The answer to "can all of `query` hold?"; `spent` grows by the resource units used.
    ///
    /// Bit-vectors answer it, and the query's translation into linear integer arithmetic
    /// (`integer/`) runs beside them on a second thread; the first definite
    /// answer stops the other. The translation says less than the query, so its `unsat` is
    /// a proof and its `sat` proves nothing: the two never disagree, and which one answers
    /// first cannot change the verdict. Bit-vectors prove counters and matches fastest; the
    /// integers token buckets and scaled arithmetic (measured on tests/foreign: 0.03–1.8 s
    /// each, where bit-vectors took up to 15 s or gave up).
    ///
    /// `spent` grows by the units of the step whose answer is used: the integer step's when
    /// it proves (and the bit-vectors found no counterexample), else the bit-vectors'.
    pub(crate) fn solve(
        &mut self,
        query: &[Bool],
        inputs: &Inputs,
        options: &Options,
        spent: &mut u64,
    ) -> Answer {
        if options.cancel.is_cancelled() || *spent >= options.budget {
            return Answer::Unknown;
        }
        let left = options.budget - *spent;
        let work = Arc::new(Work::new(query, inputs, left, options.timeout));
        let integer_limits = IntegerLimits {
            rlimit: left.min(INTEGER_BUDGET),
            wall: options.timeout.min(INTEGER_WALL),
        };
        // Each side stops the other through this token.
        let done = Cancel::new();
        let cancel = &options.cancel;
        let (proof_to, proofs) = mpsc::channel();
        let previous = self.integer.take();
        self.integer = Some({
            let (work, cancel, done) = (Arc::clone(&work), cancel.clone(), done.clone());
            std::thread::spawn(move || {
                if let Some(previous) = previous {
                    let _ = previous.join();
                }
                let _ = proof_to.send(integer_unsat(&work, integer_limits, &cancel, &done));
            })
        });
        let worker = self.bits.get_or_insert_with(BitsWorker::spawn);
        let bits = worker.solve(&work, cancel, &done);
        let proof = if matches!(bits.found, Found::Unknown) {
            // A thread that panicked proves nothing.
            proofs.recv().ok().flatten()
        } else {
            done.cancel();
            // It may have proved already; its units are then the ones that count.
            proofs.try_recv().ok().flatten()
        };
        if bits.interrupted {
            // Its context may be left cancelled (see the module's comment).
            self.bits = None;
        }
        match (bits.found, proof) {
            // A counterexample beside an integer proof would be a fault of the translation;
            // the counterexample is the answer then, and its replay checks it.
            (Found::Sat(model), _) => {
                *spent += bits.used;
                Answer::Sat(model.recover())
            }
            (_, Some(used)) => {
                *spent += used;
                Answer::Unsat
            }
            (Found::Unsat, None) => {
                *spent += bits.used;
                Answer::Unsat
            }
            (Found::Unknown, None) => {
                *spent += bits.used;
                Answer::Unknown
            }
        }
    }
}

/// A query ready to cross into the solvers' contexts.
struct Work {
    /// The query's facts, the two preferred facts, the packet and its length.
    terms: Synchronized<Vec<Dynamic>>,
    /// How many of `terms` are the query's facts.
    facts: usize,
    /// How many of `terms` are Booleans (the facts and the preferred facts).
    booleans: usize,
    rlimit: u64,
    timeout: Duration,
}

/// The terms of a query in this thread's context.
struct Terms {
    query: Vec<Bool>,
    preferred: Vec<Bool>,
    bit_level: Vec<Dynamic>,
}

impl Work {
    fn new(query: &[Bool], inputs: &Inputs, rlimit: u64, timeout: Duration) -> Work {
        // Prefer a small frame and a time below 2^31: easier to read, and a time that fits
        // an immediate lets the kernel replay patch it in.
        let preferred = [
            inputs.packet_len.bvule(BV::from_u64(SMALL_PACKET, 64)),
            inputs.now.bvult(BV::from_u64(1 << 31, 64)),
        ];
        let terms: Vec<Dynamic> = query
            .iter()
            .chain(&preferred)
            .map(|fact| Dynamic::from_ast(fact))
            .chain([
                Dynamic::from_ast(&inputs.packet),
                Dynamic::from_ast(&inputs.packet_len),
            ])
            .collect();
        Work {
            terms: terms.synchronized(),
            facts: query.len(),
            booleans: query.len() + preferred.len(),
            rlimit,
            timeout,
        }
    }

    fn recover(&self) -> Terms {
        let mut terms = self.terms.recover();
        let bit_level = terms.split_off(self.booleans);
        let booleans = |terms: &[Dynamic]| -> Vec<Bool> {
            terms
                .iter()
                .map(|t| t.as_bool().expect("the query's facts are Booleans"))
                .collect()
        };
        Terms {
            query: booleans(&terms[..self.facts]),
            preferred: booleans(&terms[self.facts..]),
            bit_level,
        }
    }
}

struct BitsOutcome {
    found: Found,
    used: u64,
    /// Whether the worker's context was interrupted (it is not used again).
    interrupted: bool,
}

/// A query for the bit-vector worker and the tokens that stop it.
struct BitsJob {
    work: Arc<Work>,
    cancel: Cancel,
    done: Cancel,
}

/// The thread the bit-vector solvers run on, in that thread's own Z3 context.
struct BitsWorker {
    jobs: Option<mpsc::Sender<BitsJob>>,
    answers: mpsc::Receiver<BitsOutcome>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BitsWorker {
    fn spawn() -> BitsWorker {
        let (jobs, job_queue) = mpsc::channel::<BitsJob>();
        let (answer_to, answers) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let solvers = [
                pipeline(&["simplify", "ackermannize_bv", "qfbv"]),
                Solver::new_for_logic("QF_ABV").unwrap_or_default(),
            ];
            for job in job_queue {
                let outcome = bits(&solvers, &job);
                let interrupted = outcome.interrupted;
                if answer_to.send(outcome).is_err() || interrupted {
                    break;
                }
            }
        });
        BitsWorker {
            jobs: Some(jobs),
            answers,
            thread: Some(thread),
        }
    }

    fn solve(&self, work: &Arc<Work>, cancel: &Cancel, done: &Cancel) -> BitsOutcome {
        let job = BitsJob {
            work: Arc::clone(work),
            cancel: cancel.clone(),
            done: done.clone(),
        };
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        let outcome = sent.then(|| self.answers.recv().ok()).flatten();
        // A worker that is gone (it panicked) answers nothing.
        outcome.unwrap_or(BitsOutcome {
            found: Found::Unknown,
            used: 0,
            interrupted: true,
        })
    }
}

impl Drop for BitsWorker {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The bit-vector solvers' answer, tried in turn within the units left. Measured here:
/// Ackermannising the select-only arrays (packet, draws) and bit-blasting eagerly proves
/// the token bucket in about 2 s every time; Z3's QF_ABV solver takes 1 to 8 s on it
/// depending on term order, but also handles the arrays a map update writes, where the
/// first fails.
fn bits(solvers: &[Solver], job: &BitsJob) -> BitsOutcome {
    let Terms {
        query, preferred, ..
    } = job.work.recover();
    let mut used = 0;
    let mut found = Found::Unknown;
    let stops = [&job.cancel, &job.done];
    for solver in solvers {
        if stops.iter().any(|stop| stop.is_cancelled()) || used >= job.work.rlimit {
            break;
        }
        found = bits_with(solver, &query, &preferred, &job.work, stops, &mut used);
        if !matches!(found, Found::Unknown) {
            break;
        }
    }
    // Every check's hooks are gone: a token cancelled by now may have interrupted this
    // context.
    let interrupted = job.cancel.is_cancelled() || job.done.is_cancelled();
    BitsOutcome {
        found,
        used,
        interrupted,
    }
}

/// One bit-vector solver's answer within what is left of `work.rlimit`.
fn bits_with(
    solver: &Solver,
    query: &[Bool],
    preferred: &[Bool],
    work: &Work,
    stops: [&Cancel; 2],
    used: &mut u64,
) -> Found {
    let mut params = without_ctrl_c();
    params.set_u32("rlimit", clamp(work.rlimit - *used));
    params.set_u32("timeout", clamp_ms(work.timeout));
    solver.set_params(&params);
    let before = rlimit_count(solver);
    solver.push();
    for fact in query {
        solver.assert(fact);
    }
    let found = match check_unless_stopped(solver, stops) {
        SatResult::Unsat => Found::Unsat,
        SatResult::Sat => {
            solver.push();
            for fact in preferred {
                solver.assert(fact);
            }
            let small = check_unless_stopped(solver, stops) == SatResult::Sat;
            let model = solver.get_model();
            solver.pop(1);
            // Without the preferences the query is asked again; a model is taken only from
            // a check that ran and found one.
            let model = if small {
                model
            } else if check_unless_stopped(solver, stops) == SatResult::Sat {
                solver.get_model()
            } else {
                None
            };
            model.map_or(Found::Unknown, |model| Found::Sat(model.synchronized()))
        }
        SatResult::Unknown => Found::Unknown,
    };
    *used += rlimit_count(solver).saturating_sub(before);
    solver.pop(1);
    found
}

#[derive(Debug, Clone, Copy)]
struct IntegerLimits {
    rlimit: u64,
    wall: Duration,
}

/// The units the proof of the query's integer translation used, or `None` when it gave
/// none. A proof cancels `done`.
///
/// Z3 4.8.12's default arithmetic solver was erratic here: measured on one token bucket's
/// query in fresh processes, the same formula was proven in 0.35–0.9 s in most runs and ran
/// to a 10 s clock in about one run of four, having spent fewer units than the runs that
/// proved. The older solver used now (`older_arithmetic`) has not shown that, but the
/// fence stays: the step is tried in attempts, each with a fresh context and another random
/// seed, the first short and each next twice as long, until the wall clock of the whole
/// step runs out.
fn integer_unsat(
    work: &Work,
    limits: IntegerLimits,
    cancel: &Cancel,
    done: &Cancel,
) -> Option<u64> {
    let started = Instant::now();
    let mut used = 0;
    let mut wall = INTEGER_ATTEMPT;
    for seed in 0u32.. {
        let elapsed = started.elapsed();
        let stopped = cancel.is_cancelled() || done.is_cancelled();
        if stopped || elapsed >= limits.wall || used >= limits.rlimit {
            break;
        }
        let attempt = Attempt {
            seed,
            limits: IntegerLimits {
                rlimit: limits.rlimit - used,
                wall: wall.min(limits.wall - elapsed),
            },
        };
        let began = Instant::now();
        let (answer, units) = integer_attempt(work, attempt, cancel, done);
        used += units;
        match answer {
            SatResult::Unsat => {
                done.cancel();
                return Some(used);
            }
            // The translation has a model: no attempt will prove it.
            SatResult::Sat => break,
            // Given up well before its clock (the solver is incomplete on it, or was
            // stopped): another seed would give up too.
            SatResult::Unknown if began.elapsed() < attempt.limits.wall / 2 => break,
            SatResult::Unknown => wall = wall.saturating_mul(2),
        }
    }
    None
}

/// The first integer attempt's wall clock: where it proves, it takes 0.06–0.5 s here with
/// the older arithmetic solver (0.2–0.9 s with the default).
const INTEGER_ATTEMPT: Duration = Duration::from_millis(750);

#[derive(Debug, Clone, Copy)]
struct Attempt {
    seed: u32,
    limits: IntegerLimits,
}

/// One attempt at the integer translation, in a context of its own: the answer and the
/// units it used.
fn integer_attempt(
    work: &Work,
    attempt: Attempt,
    cancel: &Cancel,
    done: &Cancel,
) -> (SatResult, u64) {
    z3::with_z3_config(&z3::Config::new(), || {
        let Terms {
            query, bit_level, ..
        } = work.recover();
        let facts = integer::translate(&query, bit_level);
        // The packet (its bit-level remainder) is bit-blasted before the arithmetic solver
        // runs; measured here on a token bucket's queries, that is 2–3 times faster than
        // Z3's default.
        let solver = tactics(&["simplify", "solve-eqs", "bit-blast"])
            .and_then(&z3::Tactic::new("smt").with(&older_arithmetic()))
            .solver();
        let mut params = without_ctrl_c();
        params.set_u32("rlimit", clamp(attempt.limits.rlimit));
        params.set_u32("timeout", clamp_ms(attempt.limits.wall));
        params.set_u32("random_seed", attempt.seed);
        solver.set_params(&params);
        for fact in &facts {
            solver.assert(fact);
        }
        (
            check_unless_stopped(&solver, [cancel, done]),
            rlimit_count(&solver),
        )
    })
}

/// The solver's answer, or unknown once any of `stops` is cancelled. An interrupt that
/// lands before a check starts is lost (the check clears it), so a token cancelled by then
/// is honoured here, not by Z3. Measured on seven token buckets: half the queries that the
/// bit-vectors proved in 2–5 ms then waited 0.75 s for an integer attempt that had missed
/// its stop. Every check of both sides goes through here: a bit-vector check that missed
/// its stop would run on to its whole budget.
fn check_unless_stopped(solver: &Solver, stops: [&Cancel; 2]) -> SatResult {
    let _hooks = stops.map(interrupt::on_cancel);
    if stops.iter().any(|stop| stop.is_cancelled()) {
        SatResult::Unknown
    } else {
        solver.check()
    }
}

/// A solver running Z3's tactics `names` in turn.
fn pipeline(names: &[&str]) -> Solver {
    tactics(names).solver()
}

/// Z3's tactics `names` in turn.
fn tactics(names: &[&str]) -> z3::Tactic {
    names[1..]
        .iter()
        .fold(z3::Tactic::new(names[0]), |t, name| {
            t.and_then(&z3::Tactic::new(name))
        })
}

/// Z3 4.8.12's older arithmetic solver (`arith.solver=2`) for the integer translation.
/// Measured on the integer queries of the eight right foreign token buckets, each with
/// eight random seeds (Debian's `z3` command on the dumped queries): the default solver
/// took 0.2–2.1 s and ran to a 10 s clock on one seed of `nano_multiply_overflow_check`;
/// the older one answered every seed of every bucket in 0.06–0.5 s.
fn older_arithmetic() -> Params {
    let mut params = Params::new();
    params.set_u32("arith.solver", 2);
    params
}

fn clamp(units: u64) -> u32 {
    units.min(u64::from(u32::MAX)) as u32
}

fn clamp_ms(wall: Duration) -> u32 {
    wall.as_millis().min(u128::from(u32::MAX)) as u32
}

/// The resource units this solver's context has used so far (Z3 counts per context, so only
/// differences mean anything).
fn rlimit_count(solver: &Solver) -> u64 {
    solver
        .get_statistics()
        .value("rlimit count")
        .map(|value| match value {
            z3::StatisticsValue::UInt(n) => u64::from(n),
            z3::StatisticsValue::Double(x) => x as u64,
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop that came before the check still stops it: Z3 alone would clear it and
    /// answer.
    #[test]
    fn a_stop_before_the_check_is_kept() {
        let solver = Solver::new();
        solver.assert(Bool::from_bool(true));
        let (running, stopped) = (Cancel::new(), Cancel::new());
        assert_eq!(
            check_unless_stopped(&solver, [&running, &stopped]),
            SatResult::Sat
        );
        stopped.cancel();
        assert_eq!(
            check_unless_stopped(&solver, [&running, &stopped]),
            SatResult::Unknown
        );
        // What the guard is for: Z3 answers a check whose interrupt came before it.
        let _hook = interrupt::on_cancel(&stopped);
        assert_eq!(solver.check(), SatResult::Sat);
    }
}
