//! The optimizer's deterministic search (docs/optimizer.md): the rules backend's program
//! under every strategy and clang setting, then the bytecode rewrites of the cheapest, each
//! judged by the one gate; the cheapest proven program wins, ties going to the earlier
//! candidate, so the same inputs give the same winner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use simplebpf_checker::Session;
use simplebpf_compiler::backend::{self, LockPlace, Strategy};
use simplebpf_compiler::clang::OptLevel;
use simplebpf_dsl::ir::Program;

use crate::gate::{Candidate, Cost, GateOptions, Gated, Origin, Reason, Rejection, Source, gate};
use crate::rewrite::{self, Rule};

/// One point of the search space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub strategy: Strategy,
    pub opt_level: OptLevel,
}

impl Searched {
    /// What produced the winner, as the report names it: `filter=fused lock=map -O2`, with
    /// `+ rewrites: …` when bytecode rewrites made it cheaper.
    pub fn winner_description(&self) -> String {
        match &self.winner_rewrites {
            Some(rewrites) => format!("{} + rewrites: {rewrites}", self.winner_variant.describe()),
            None => self.winner_variant.describe(),
        }
    }
}

impl Variant {
    /// How the report names it: `filter=fused -Os`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.strategy.describe(), self.opt_level.flag())
    }
}

/// The clang optimisation levels tried besides the build's own: `-O3` and `-mcpu=v4` were
/// measured to give the same objects as `-O2` and `v3` on every example (docs/optimizer.md),
/// so they are not tried.
const OPT_LEVELS: [OptLevel; 2] = [OptLevel::O2, OptLevel::Os];

/// Every variant in the order they are tried: the build's own first (the program before
/// optimization), then each strategy with each optimisation level.
pub fn variants(base: OptLevel, takes_lock: bool, lock_places: &[LockPlace]) -> Vec<Variant> {
    let mut levels = vec![base];
    levels.extend(OPT_LEVELS.into_iter().filter(|level| *level != base));
    let mut all = Vec::new();
    for strategy in Strategy::all_within(takes_lock, lock_places) {
        for &opt_level in &levels {
            all.push(Variant {
                strategy,
                opt_level,
            });
        }
    }
    all
}

/// What the search did and what it kept.
#[derive(Debug)]
pub struct Searched {
    /// The program before optimization: the build's own variant.
    pub before: Gated,
    /// The cheapest proven program (the `before` one when nothing was cheaper).
    pub winner: Gated,
    pub winner_variant: Variant,
    /// The bytecode rewrites applied to the winning variant's object, when they made it
    /// cheaper (`constant-reuse×1 redundant-move×1`).
    pub winner_rewrites: Option<String>,
    /// Variants judged by the gate, the first included.
    pub candidates: usize,
    pub accepted: usize,
    pub rejected: BTreeMap<Reason, usize>,
    /// Variants left untried because the budget ran out.
    pub untried: usize,
    pub elapsed: Duration,
}

/// Where the search stands after each variant: how many of them are done, and the cost of
/// the best program so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub best: Cost,
}

/// Who hears the search's progress (the command line draws a line on a terminal).
pub trait ProgressSink: std::fmt::Debug + Send + Sync {
    fn progress(&self, progress: &Progress);
}

/// The search's inputs besides the first program.
#[derive(Debug)]
pub struct Search<'a> {
    pub program: &'a Program,
    /// The rules backend's options of the first program; the strategy is varied.
    pub backend: &'a backend::Options,
    pub gate: &'a GateOptions,
    pub budget: Duration,
    /// Whether the first program takes the lock (its layout says).
    pub takes_lock: bool,
    /// Where the search may put the lock (`LockPlace::ALL` unless the loader cannot load
    /// some).
    pub lock_places: &'a [LockPlace],
    pub progress: Option<&'a dyn ProgressSink>,
}

/// Searches from `first`, the gated program of `variants(..)[0]`. A machine failure (no
/// clang, no kernel, an interruption) ends the search with the error; a candidate's fault is
/// counted and the search goes on.
pub fn search(
    search: &Search<'_>,
    first: Gated,
    session: &mut Session,
    scratch: &Path,
) -> Result<Searched, Rejection> {
    let start = Instant::now();
    let all = variants(
        search.gate.clang.opt_level,
        search.takes_lock,
        search.lock_places,
    );
    // A variant strictly cheaper than the best so far, and which variant it is.
    let mut cheaper: Option<(Gated, Variant)> = None;
    let mut accepted = 1;
    let mut rejected = BTreeMap::new();
    let mut untried = 0;
    // A strategy dimension the program does not have (a lock place without a lock) emits the
    // same C as another variant: judged once.
    let mut seen = BTreeSet::from([(first.c_source.clone(), all[0].opt_level)]);
    let mut duplicates = 0;
    for (index, variant) in all.iter().enumerate().skip(1) {
        if let Some(sink) = search.progress {
            let best = cheaper.as_ref().map_or(&first, |(best, _)| best);
            sink.progress(&Progress {
                done: index,
                total: all.len(),
                best: best.cost(),
            });
        }
        let candidate = match emit(search, *variant) {
            Ok(candidate) => candidate,
            Err(rejection) => {
                count(&mut rejected, rejection)?;
                continue;
            }
        };
        if !seen.insert((
            candidate_text(&candidate).map(str::to_owned),
            variant.opt_level,
        )) {
            duplicates += 1;
            continue;
        }
        if start.elapsed() >= search.budget {
            untried = all.len() - index;
            break;
        }
        match judge(search, *variant, candidate, session, scratch) {
            Ok(gated) => {
                accepted += 1;
                let best = cheaper.as_ref().map_or(&first, |(best, _)| best);
                if gated.cost().is_cheaper_than(&best.cost()) {
                    cheaper = Some((gated, *variant));
                }
            }
            Err(rejection) => count(&mut rejected, rejection)?,
        }
    }
    let (mut winner, winner_variant) = cheaper.unwrap_or_else(|| (first.clone(), all[0]));
    let mut candidates = all.len() - untried - duplicates;
    let mut winner_rewrites = None;
    if let Some((candidate, applied)) = rewritten(&winner, &winner_variant) {
        if start.elapsed() >= search.budget {
            untried += 1;
        } else {
            candidates += 1;
            match judge(search, winner_variant, candidate, session, scratch) {
                Ok(mut gated) => {
                    accepted += 1;
                    if gated.cost().is_cheaper_than(&winner.cost()) {
                        // The C the rewritten object was compiled from before the rewrites.
                        gated.c_source = winner.c_source.take();
                        winner = gated;
                        winner_rewrites = Some(applied);
                    }
                }
                Err(rejection) => count(&mut rejected, rejection)?,
            }
        }
    }
    Ok(Searched {
        before: first,
        winner,
        winner_variant,
        winner_rewrites,
        candidates,
        accepted,
        rejected,
        untried,
        elapsed: start.elapsed(),
    })
}

/// The winner's object with every bytecode rewrite rule applied, when any applies, and what
/// was applied.
fn rewritten(winner: &Gated, variant: &Variant) -> Option<(Candidate, String)> {
    let program = winner.object.xdp_program(Some(&winner.program)).ok()?;
    let out = rewrite::rewrite(&program.insns, &Rule::ALL).ok()?;
    if out.applied.is_empty() {
        return None;
    }
    let elf = program.patched(&winner.elf, &out.insns).ok()?;
    let applied = out.describe();
    let candidate = Candidate {
        source: Source::Elf(elf),
        origin: Origin::Optimizer(format!("{} rewrites: {applied}", variant.describe())),
        program: Some(winner.program.clone()),
    };
    Some((candidate, applied))
}

/// Counts a candidate's fault; a machine failure is returned.
fn count(rejected: &mut BTreeMap<Reason, usize>, rejection: Rejection) -> Result<(), Rejection> {
    match rejection.reason() {
        Some(reason) => {
            *rejected.entry(reason).or_default() += 1;
            Ok(())
        }
        None => Err(rejection),
    }
}

/// The variant's program, not yet judged.
fn emit(search: &Search<'_>, variant: Variant) -> Result<Candidate, Rejection> {
    let options = backend::Options {
        strategy: variant.strategy,
        ..search.backend.clone()
    };
    // The first program was emitted from the same IR; a strategy the backend cannot emit
    // would be a bug in it, and is no reason to fail a build that has a program already.
    let emitted =
        backend::emit(search.program, &options).map_err(|diagnostics| Rejection::Unknown {
            reason: format!(
                "strategy {} cannot be emitted: {diagnostics:?}",
                variant.describe()
            ),
        })?;
    Ok(Candidate {
        source: Source::C {
            text: emitted.c_source,
            file_name: format!("{}.bpf.c", options.name),
        },
        origin: Origin::Optimizer(variant.describe()),
        program: Some(emitted.function),
    })
}

fn candidate_text(candidate: &Candidate) -> Option<&str> {
    match &candidate.source {
        Source::C { text, .. } => Some(text),
        Source::CFile(_) | Source::Elf(_) => None,
    }
}

fn judge(
    search: &Search<'_>,
    variant: Variant,
    candidate: Candidate,
    session: &mut Session,
    scratch: &Path,
) -> Result<Gated, Rejection> {
    let mut gate_options = search.gate.clone();
    gate_options.clang.opt_level = variant.opt_level;
    // A variant is kept only proven, whatever the build allows for its first program.
    gate_options.require_proof = true;
    gate(candidate, Some(session), &gate_options, scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simplebpf_compiler::backend::FilterShape;

    #[test]
    fn the_builds_own_variant_comes_first_and_none_repeats() {
        for base in OptLevel::ALL {
            for takes_lock in [false, true] {
                let all = variants(base, takes_lock, &LockPlace::ALL);
                assert_eq!(all[0].opt_level, base);
                assert_eq!(all[0].strategy.filter, FilterShape::default());
                assert_eq!(all[0].strategy.lock.is_some(), takes_lock);
                for (i, a) in all.iter().enumerate() {
                    assert!(all[i + 1..].iter().all(|b| b != a), "{a:?} twice");
                }
                assert!(all.len() >= Strategy::all(takes_lock).len() * OPT_LEVELS.len());
            }
        }
    }

    #[test]
    fn a_loader_that_cannot_load_a_lock_in_global_data_never_gets_one() {
        let all = variants(OptLevel::O2, true, &[LockPlace::ArrayMap]);
        assert!(!all.is_empty());
        assert!(
            all.iter()
                .all(|v| v.strategy.lock == Some(LockPlace::ArrayMap))
        );
        let everywhere = variants(OptLevel::O2, true, &LockPlace::ALL);
        assert!(
            everywhere
                .iter()
                .any(|v| v.strategy.lock == Some(LockPlace::GlobalData))
        );
    }
}
