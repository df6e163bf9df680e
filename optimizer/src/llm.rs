//! The LLM as a producer of candidates (ARCHITECTURE.md, "The unit of work"): a conversation
//! of up to `rounds` answers, each screened (hostile input), compiled in clang's sandbox and
//! judged by the one gate; every rejection becomes the next user message. `samples`
//! independent conversations run one after another (the gate is CPU-bound and a local
//! server answers one request at a time), and the cheapest accepted program is kept.

use std::path::Path;
use std::time::Instant;

use simplebpf_checker::explain;
use simplebpf_checker::{Session, Verdict};
use simplebpf_compiler::clang::ClangError;
use simplebpf_compiler::kernel;
use simplebpf_compiler::llm::answer::{self, Code};
use simplebpf_compiler::llm::screen::{self, ScreenError};
use simplebpf_compiler::llm::{ClientError, Finish, Message, Model, Role, Usage, prompt};
use simplebpf_compiler::object_model::listing;
use simplebpf_dsl::ir::Program;

use crate::gate::{Candidate, Cost, GateOptions, Gated, Origin, Rejection, Source, gate};

/// How long a conversation is, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversations {
    /// Answers per conversation (each after the first is a repair).
    pub rounds: usize,
    /// Independent conversations; the cheapest accepted program wins.
    pub samples: usize,
}

impl Default for Conversations {
    fn default() -> Conversations {
        Conversations {
            rounds: 3,
            samples: 1,
        }
    }
}

/// What became of one answer. The names (`name()`) are the report's `outcome` values.
#[derive(Debug, Clone)]
pub enum Outcome {
    Accepted,
    ScreenRejected(ScreenError),
    ClangError(String),
    /// The verifier's log, trimmed to the error and the instructions before it.
    VerifierRejected {
        excerpt: String,
    },
    /// A counterexample, as `check` shows it.
    NotEquivalent {
        explained: String,
    },
    Race {
        instruction: usize,
        variable: String,
    },
    Unknown {
        reason: String,
    },
    NoCode,
    Truncated,
    HttpError(ClientError),
    /// Proven, but the LLM optimizer wants cheaper than the best so far.
    NotCheaper {
        cost: Cost,
        best: Cost,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::ScreenRejected(_) => "screen_rejected",
            Outcome::ClangError(_) => "clang_error",
            Outcome::VerifierRejected { .. } => "verifier_rejected",
            Outcome::NotEquivalent { .. } => "not_equivalent",
            Outcome::Race { .. } => "race",
            Outcome::Unknown { .. } => "unknown",
            Outcome::NoCode => "no_code",
            Outcome::Truncated => "truncated",
            Outcome::HttpError(_) => "http_error",
            Outcome::NotCheaper { .. } => "not_cheaper",
        }
    }

    /// The rejection's detail: what the report shows and the next prompt carries.
    pub fn detail(&self) -> String {
        match self {
            Outcome::Accepted => String::new(),
            Outcome::ScreenRejected(err) => err.to_string(),
            Outcome::ClangError(stderr) => stderr.clone(),
            Outcome::VerifierRejected { excerpt } => excerpt.clone(),
            Outcome::NotEquivalent { explained } => explained.clone(),
            Outcome::Race {
                instruction,
                variable,
            } => explain::text(
                &Verdict::Race {
                    instruction: *instruction,
                    variable: variable.clone(),
                },
                None,
                None,
            ),
            Outcome::Unknown { reason } => reason.clone(),
            Outcome::NoCode => "The answer held no fenced C code block.".to_string(),
            Outcome::Truncated => {
                "The answer was cut off at the token limit before it ended.".to_string()
            }
            Outcome::HttpError(err) => err.to_string(),
            Outcome::NotCheaper { cost, best } => format!(
                "Your program costs {}; the best so far costs {}.",
                cost.describe(),
                best.describe()
            ),
        }
    }

    /// What the next prompt says happened.
    fn headline(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::ScreenRejected(_) => "it breaks the output contract and was not compiled",
            Outcome::ClangError(_) => "clang could not compile it",
            Outcome::VerifierRejected { .. } => {
                "the kernel verifier rejected it (its log ends below)"
            }
            Outcome::NotEquivalent { .. } => {
                "it is not equivalent to the policy; the checker found this counterexample"
            }
            Outcome::Race { .. } => "it has a race",
            Outcome::Unknown { .. } => "the checker could not prove it equivalent",
            Outcome::NoCode => "it holds no code block",
            Outcome::Truncated => "it was truncated",
            Outcome::HttpError(_) => "the server failed",
            Outcome::NotCheaper { .. } => {
                "it is proven, but it is not cheaper than the best program"
            }
        }
    }
}

/// One answer and its fate.
#[derive(Debug, Clone)]
pub struct Round {
    /// 1-based.
    pub sample: usize,
    /// 1-based.
    pub round: usize,
    pub outcome: Outcome,
    /// From sending the request to the gate's verdict.
    pub ms: u128,
    pub usage: Option<Usage>,
}

/// Hears how the conversations go (a progress line on a terminal).
pub trait Observer {
    fn round_started(&mut self, sample: usize, round: usize);
    /// Chunks received so far in this round (streaming only).
    fn received(&mut self, chunks: u64);
    fn round_ended(&mut self, round: &Round);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn round_started(&mut self, _: usize, _: usize) {}
    fn received(&mut self, _: u64) {}
    fn round_ended(&mut self, _: &Round) {}
}

/// What the conversations produced.
#[derive(Debug)]
pub struct Produced {
    pub rounds: Vec<Round>,
    /// The cheapest program the gate accepted, if any.
    pub accepted: Option<Gated>,
}

impl Produced {
    /// The last rejection was the checker's "unknown" (`--fallback none` exits 3 then).
    pub fn ended_unknown(&self) -> bool {
        self.accepted.is_none()
            && matches!(
                self.rounds.last().map(|r| &r.outcome),
                Some(Outcome::Unknown { .. })
            )
    }
}

/// What the conversations are for.
#[derive(Debug, Clone, Copy)]
pub enum Goal<'a> {
    /// Write the program from the policy (the LLM backend).
    Write,
    /// A cheaper program than `best`, a proven one (the LLM optimizer): a proven answer that
    /// is not cheaper is a rejection like any other, fed back.
    Cheaper { best: &'a Gated },
}

/// What the loop needs besides the model.
#[derive(Debug)]
pub struct Task<'a> {
    pub goal: Goal<'a>,
    /// The policy's text, as the user wrote it.
    pub source: &'a str,
    pub program: &'a Program,
    /// The stem of file names clang cites.
    pub name: &'a str,
    pub gate: &'a GateOptions,
    /// A replay of a counterexample that this machine cannot run is an error.
    pub kernel_required: bool,
}

/// Runs the conversations. Errors are the machine's (interrupted, no kernel, no clang), never
/// an answer's: those are rounds.
pub fn produce(
    model: &dyn Model,
    task: &Task<'_>,
    session: &mut Session,
    conversations: Conversations,
    scratch: &Path,
    observer: &mut dyn Observer,
) -> Result<Produced, Rejection> {
    let options = task.gate.for_untrusted();
    let mut rounds = Vec::new();
    let mut best: Option<Gated> = None;
    for sample in 1..=conversations.samples {
        let mut messages = first_messages(task);
        for round in 1..=conversations.rounds {
            task.gate.cancel.check()?;
            observer.round_started(sample, round);
            let started = Instant::now();
            let completion = model.complete(&messages, &mut |chunks| observer.received(chunks));
            task.gate.cancel.check()?;
            let (outcome, usage, accepted) = match completion {
                Err(err) => (Outcome::HttpError(err), None, None),
                Ok(completion) => {
                    let usage = completion.usage;
                    let (outcome, accepted) = judge_for(
                        task.goal,
                        judge(
                            &completion.content,
                            &completion.finish,
                            task,
                            &options,
                            session,
                            scratch,
                            Origin::Llm { sample, round },
                        )?,
                    );
                    messages.push(Message {
                        role: Role::Assistant,
                        content: kept_in_history(completion.content),
                    });
                    (outcome, usage, accepted)
                }
            };
            let record = Round {
                sample,
                round,
                outcome,
                ms: started.elapsed().as_millis(),
                usage,
            };
            observer.round_ended(&record);
            let stop = match &record.outcome {
                Outcome::Accepted => true,
                // The server failed after its retries: the next round would ask it again.
                Outcome::HttpError(_) => true,
                other => {
                    messages.push(prompt::feedback(other.headline(), &other.detail()));
                    false
                }
            };
            rounds.push(record);
            if let Some(gated) = accepted
                && best
                    .as_ref()
                    .is_none_or(|b| gated.cost().is_cheaper_than(&b.cost()))
            {
                best = Some(gated);
            }
            if stop {
                break;
            }
        }
    }
    Ok(Produced {
        rounds,
        accepted: best,
    })
}

fn first_messages(task: &Task<'_>) -> Vec<Message> {
    match task.goal {
        Goal::Write => prompt::initial(task.source, task.program, task.gate.port),
        Goal::Cheaper { best } => {
            let cost = best.cost().describe();
            let listing = best
                .object
                .xdp_program(Some(&best.program))
                .map(|program| listing::listing(&program.insns))
                .unwrap_or_default();
            let x86 = best
                .kernel
                .numbers()
                .map(|numbers| kernel::x86_listing(&numbers.jit_image));
            let best = prompt::Best {
                c: best.c_source.as_deref().unwrap_or_default(),
                cost: &cost,
                listing: &listing,
                x86: x86.as_deref(),
            };
            prompt::optimize(task.source, task.program, task.gate.port, best)
        }
    }
}

/// An accepted answer that is not cheaper than the best, when cheaper is the goal, becomes
/// the rejection "not cheaper".
fn judge_for(goal: Goal<'_>, judged: (Outcome, Option<Gated>)) -> (Outcome, Option<Gated>) {
    match (goal, judged) {
        (Goal::Cheaper { best }, (Outcome::Accepted, Some(gated)))
            if !gated.cost().is_cheaper_than(&best.cost()) =>
        {
            let outcome = Outcome::NotCheaper {
                cost: gated.cost(),
                best: best.cost(),
            };
            (outcome, None)
        }
        (_, judged) => judged,
    }
}

/// An answer as it stays in the conversation: a huge one would crowd out everything else.
/// How much of an answer over the screen's size cap the conversation keeps: enough for the
/// model to recognise its own answer, not enough to fill the context.
const HISTORY_KEPT_BYTES: usize = 2048;

fn kept_in_history(content: String) -> String {
    if content.len() <= screen::MAX_BYTES {
        return content;
    }
    let mut cut = HISTORY_KEPT_BYTES;
    while !content.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n[… the rest of this {}-byte answer is left out]",
        &content[..cut],
        content.len()
    )
}

/// Screens, compiles and gates one answer.
fn judge(
    content: &str,
    finish: &Finish,
    task: &Task<'_>,
    options: &GateOptions,
    session: &mut Session,
    scratch: &Path,
    origin: Origin,
) -> Result<(Outcome, Option<Gated>), Rejection> {
    if *finish == Finish::Length {
        return Ok((Outcome::Truncated, None));
    }
    // The size cap comes before anything reads the answer line by line.
    if content.len() > screen::MAX_BYTES {
        return Ok((
            Outcome::ScreenRejected(ScreenError::TooLarge {
                bytes: content.len(),
            }),
            None,
        ));
    }
    let Code::Found(c) = answer::extract(content) else {
        return Ok((Outcome::NoCode, None));
    };
    if let Err(err) = screen::screen(&c) {
        return Ok((Outcome::ScreenRejected(err), None));
    }
    let candidate = Candidate {
        source: Source::C {
            text: c,
            file_name: format!("{}.c", task.name),
        },
        origin,
        program: None,
    };
    let outcome = match gate(candidate, Some(session), options, scratch) {
        Ok(gated) => return Ok((Outcome::Accepted, Some(gated))),
        Err(rejection) => rejected(rejection, task)?,
    };
    Ok((outcome, None))
}

/// A rejection as a round's outcome, or the machine's failure as an error.
fn rejected(rejection: Rejection, task: &Task<'_>) -> Result<Outcome, Rejection> {
    // The machine's failures (no clang, no kernel, an interruption) are no verdict on the
    // answer: `Rejection::reason` is the one place that tells them apart.
    if rejection.reason().is_none() {
        return Err(rejection);
    }
    Ok(match rejection {
        Rejection::Clang(err) => Outcome::ClangError(clang_detail(err)),
        Rejection::Object(err) => Outcome::ClangError(err.to_string()),
        Rejection::Contract(err) => Outcome::NotEquivalent {
            explained: format!("The object does not follow the state contract: {err}"),
        },
        Rejection::Verifier { log } => Outcome::VerifierRejected {
            excerpt: verifier_excerpt(&log),
        },
        Rejection::NotEquivalent { verdict, compiled } => match *verdict {
            Verdict::Race {
                instruction,
                variable,
            } => Outcome::Race {
                instruction,
                variable,
            },
            verdict => match explain::replay(
                task.program,
                &verdict,
                task.gate.port,
                Some(compiled.compiled()),
                task.kernel_required,
            ) {
                Ok(replay) => Outcome::NotEquivalent {
                    explained: explain::text(&verdict, replay.as_ref(), compiled.contract.as_ref()),
                },
                // The checker's mistake or the machine's: not proven, not "not equivalent".
                Err(err) => Outcome::Unknown {
                    reason: err.to_string(),
                },
            },
        },
        Rejection::Unknown { reason } => Outcome::Unknown { reason },
        other => return Err(other),
    })
}

fn clang_detail(err: ClangError) -> String {
    match err {
        ClangError::Rejected { stderr } => stderr,
        other => other.to_string(),
    }
}

/// How many lines of the verifier's log a prompt carries.
pub const VERIFIER_EXCERPT_LINES: usize = 30;

/// The verifier's error line and the instructions before it, raw (a summary repairs worse):
/// the log up to the last line before the verifier's closing statistics.
pub fn verifier_excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let statistics = |line: &str| {
        line.starts_with("processed ")
            || line.starts_with("verification time")
            || line.starts_with("stack depth")
            || line.trim().is_empty()
    };
    let end = lines
        .iter()
        .rposition(|line| !statistics(line))
        .map_or(0, |at| at + 1);
    let start = end.saturating_sub(VERIFIER_EXCERPT_LINES);
    lines[start..end].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_ends_at_the_error_line() {
        let mut log = String::new();
        for i in 0..50 {
            log.push_str(&format!("{i}: (b7) r0 = {i}\n"));
        }
        log.push_str("invalid access to packet, off=12 size=2, R2(id=0,off=12,r=0)\n");
        log.push_str("R2 offset is outside of the packet\n");
        log.push_str("processed 51 insns (limit 1000000) max_states_per_insn 0\n\n");
        let excerpt = verifier_excerpt(&log);
        let lines: Vec<&str> = excerpt.lines().collect();
        assert_eq!(lines.len(), VERIFIER_EXCERPT_LINES);
        assert_eq!(lines.last(), Some(&"R2 offset is outside of the packet"));
        assert_eq!(lines[0], "22: (b7) r0 = 22");
        assert_eq!(verifier_excerpt(""), "");
    }

    #[test]
    fn a_huge_answer_is_cut_in_the_history_on_a_char_boundary() {
        let answer = "é".repeat(screen::MAX_BYTES);
        let kept = kept_in_history(answer.clone());
        assert!(kept.len() <= HISTORY_KEPT_BYTES + 64, "{}", kept.len());
        assert!(kept.starts_with("éé"));
        assert!(kept.ends_with(&format!("{}-byte answer is left out]", answer.len())));
        assert_eq!(kept_in_history("short".to_string()), "short");
    }

    #[test]
    fn outcome_names_are_the_reports() {
        let names = [
            Outcome::Accepted.name(),
            Outcome::NoCode.name(),
            Outcome::Truncated.name(),
            Outcome::Unknown {
                reason: String::new(),
            }
            .name(),
        ];
        assert_eq!(names, ["accepted", "no_code", "truncated", "unknown"]);
    }
}
