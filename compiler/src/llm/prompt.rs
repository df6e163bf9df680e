//! The prompt: versioned templates kept in the repository (`compiler/prompts/`, their SHA-256
//! goes into the report), filled with the policy, its IR text, the facts the float rewriter
//! computes exactly (draw thresholds, a scale per float variable: hints, the checker decides),
//! and the two example pairs (policy → proven C) most similar to the policy, retrieved from
//! the examples shipped with simplebpf. Everything here is deterministic.
//!
//! Similarity: the Jaccard index of the two policies' sets of words (names, keywords and
//! built-ins; numbers and punctuation left out), ties broken by name — KEN's top-2 retrieval
//! with a measure that needs no model.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use simplebpf_dsl::ir::{ExprKind, Program};

use super::{Message, Role};
use crate::backend;
use crate::threshold::{DrawTest, randomf_compare};

pub const SYSTEM: &str = include_str!("../../prompts/system.txt");
pub const USER: &str = include_str!("../../prompts/user.txt");
pub const FEEDBACK: &str = include_str!("../../prompts/feedback.txt");
pub const OPTIMIZE: &str = include_str!("../../prompts/optimize.txt");

/// How many example pairs a prompt carries.
pub const EXAMPLES: usize = 2;

/// The policies the retrieval draws from, with their names.
pub const CORPUS: &[(&str, &str)] = &[
    ("fault", include_str!("../../../examples/fault.appnet")),
    (
        "ratelimit",
        include_str!("../../../examples/ratelimit.appnet"),
    ),
    ("null", include_str!("../../../examples/null.appnet")),
    ("acl", include_str!("../../../examples/acl.appnet")),
    (
        "logging",
        include_str!("../../../examples/bench/logging.appnet"),
    ),
    (
        "logging_fault",
        include_str!("../../../examples/bench/logging_fault.appnet"),
    ),
    (
        "fault_condition",
        include_str!("../../../examples/bench/fault_condition.appnet"),
    ),
];

/// The SHA-256 of the three templates, in order (recorded in reports and lockfiles).
pub fn templates_sha256() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for template in [SYSTEM, USER, FEEDBACK] {
        hasher.update(template.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A template without its version line.
fn body(template: &str) -> &str {
    template.split_once('\n').map_or(template, |(_, rest)| rest)
}

/// The first two messages of a conversation about `source` (its IR `program`).
pub fn initial(source: &str, program: &Program, port: u16) -> Vec<Message> {
    let user = about_policy(USER, source, program, port)
        .replace("{facts}", &facts(program, port))
        .replace("{examples}", &examples(source, port));
    conversation(user)
}

/// `template` without its version line, with the policy, its IR and the port filled in.
fn about_policy(template: &str, source: &str, program: &Program, port: u16) -> String {
    body(template)
        .replace("{port}", &port.to_string())
        .replace("{policy}", source.trim_end())
        .replace("{ir}", program.to_string().trim_end())
}

/// The system message (the output contract) and `user`.
fn conversation(user: String) -> Vec<Message> {
    vec![
        Message {
            role: Role::System,
            content: body(SYSTEM).to_string(),
        },
        Message {
            role: Role::User,
            content: user,
        },
    ]
}

/// The best proven program so far, for the LLM optimizer's prompt.
#[derive(Debug, Clone, Copy)]
pub struct Best<'a> {
    pub c: &'a str,
    /// Its cost in words: `JIT 57 x86 instructions, 41 BPF instructions after the verifier, …`.
    pub cost: &'a str,
    /// Its BPF instructions (`object_model::listing`).
    pub listing: &'a str,
    /// Its x86-64 instructions after the JIT (`kernel::x86_listing`), when the kernel
    /// measured it.
    pub x86: Option<&'a str>,
}

/// The first two messages of a conversation that asks for a cheaper program than `best`:
/// the same system message (the output contract) as writing one.
pub fn optimize(source: &str, program: &Program, port: u16, best: Best<'_>) -> Vec<Message> {
    let user = about_policy(OPTIMIZE, source, program, port)
        .replace("{program}", best.c.trim_end())
        .replace("{cost}", best.cost)
        .replace("{listing}", best.listing.trim_end())
        .replace(
            "{x86}",
            best.x86
                .map_or("(not measured: no kernel to load it into)", str::trim_end),
        );
    conversation(user)
}

/// The message that tells the model why its answer was not accepted.
pub fn feedback(outcome: &str, detail: &str) -> Message {
    Message {
        role: Role::User,
        content: body(FEEDBACK)
            .replace("{outcome}", outcome)
            .replace("{detail}", detail.trim_end()),
    }
}

/// The exact draw thresholds of `randomf` comparisons with constants, and the scale the rules
/// backend chose for each stored float.
pub fn facts(program: &Program, port: u16) -> String {
    let initial = simplebpf_dsl::interp::load(program, &[], 0).ok();
    let constant = |expr: &simplebpf_dsl::ir::Expr| -> Option<num_rational::BigRational> {
        match &expr.kind {
            ExprKind::Const(simplebpf_dsl::ir::Const::Float(v)) => Some(v.clone()),
            ExprKind::Const(simplebpf_dsl::ir::Const::Int(v)) => {
                Some(num_rational::BigRational::from_integer((*v).into()))
            }
            ExprKind::ToFloat(inner) => match &inner.kind {
                ExprKind::Const(simplebpf_dsl::ir::Const::Int(v)) => {
                    Some(num_rational::BigRational::from_integer((*v).into()))
                }
                _ => None,
            },
            ExprKind::State(id) if !program.state_var(*id).written_by_handlers => match initial
                .as_ref()?
                .state
                .vars
                .get(&program.state_var(*id).name)?
            {
                simplebpf_dsl::interp::Value::Float(v) => Some(v.clone()),
                simplebpf_dsl::interp::Value::Int(v) => {
                    Some(num_rational::BigRational::from_integer((*v).into()))
                }
                _ => None,
            },
            _ => None,
        }
    };
    let mut lines = BTreeSet::new();
    let mut visit = |expr: &simplebpf_dsl::ir::Expr| {
        if let ExprKind::Compare { op, lhs, rhs } = &expr.kind
            && let ExprKind::Randomf { lo, hi } = &lhs.kind
            && let (Some(lo), Some(hi), Some(c)) = (constant(lo), constant(hi), constant(rhs))
        {
            let test = match randomf_compare(&lo, &hi, *op, &c) {
                DrawTest::Always => "always true (the draw is still taken)".to_string(),
                DrawTest::Never => "never true (the draw is still taken)".to_string(),
                DrawTest::Below(k) => format!("bpf_get_prandom_u32() < {k}u"),
                DrawTest::AtLeast(k) => format!("bpf_get_prandom_u32() >= {k}u"),
                DrawTest::Equal(k) => format!("bpf_get_prandom_u32() == {k}u"),
                DrawTest::NotEqual(k) => format!("bpf_get_prandom_u32() != {k}u"),
            };
            lines.insert(format!(
                "- randomf({lo}, {hi}) {} {c} is exactly {test}",
                op.symbol()
            ));
        }
    };
    for block in [&program.init.body, &program.req.body] {
        simplebpf_dsl::ir::walk_block(block, &mut |stmt| {
            for expr in simplebpf_dsl::ir::stmt_exprs(stmt) {
                simplebpf_dsl::ir::walk_expr(expr, &mut visit);
            }
        });
    }
    if let Ok(emitted) = backend::emit(
        program,
        &backend::Options {
            port,
            name: "policy".to_string(),
            test_hooks: false,
            strategy: Default::default(),
        },
    ) {
        for var in &emitted.layout.vars {
            let scale = match &var.storage {
                backend::layout::Storage::Global(codec) => codec.scale.clone(),
                backend::layout::Storage::HashMap { value, .. } => value.scale.clone(),
                backend::layout::Storage::RingBuf { element } => element.scale.clone(),
                backend::layout::Storage::Folded(value) => {
                    lines.insert(format!(
                        "- `{}` is never written by a handler: a constant, {value}",
                        var.name
                    ));
                    None
                }
            };
            if let Some(scale) = scale {
                lines.insert(format!(
                    "- `{}` can be stored at scale {scale} (exact for every value it takes)",
                    var.name
                ));
            }
        }
    }
    if lines.is_empty() {
        return "- none".to_string();
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

/// The words of a policy: names, keywords and built-ins.
fn words(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .flat_map(|line| line.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .filter(|word| {
            word.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// Jaccard similarity of two word sets.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (x, y) = (words(a), words(b));
    let union = x.union(&y).count();
    if union == 0 {
        return 0.0;
    }
    x.intersection(&y).count() as f64 / union as f64
}

/// The names of the `k` corpus policies most similar to `source`, most similar first
/// (the policy itself left out).
pub fn nearest(source: &str, k: usize) -> Vec<&'static str> {
    let normal = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let own = normal(source);
    let mut scored: Vec<(f64, &str)> = CORPUS
        .iter()
        .filter(|(_, text)| normal(text) != own)
        .map(|(name, text)| (similarity(source, text), *name))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(k).map(|(_, name)| name).collect()
}

/// The example pairs of a prompt: each retrieved policy and the C the rules backend emits
/// for it (which the checker proves).
fn examples(source: &str, port: u16) -> String {
    let mut out = String::new();
    for name in nearest(source, EXAMPLES) {
        let text = CORPUS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .expect("retrieved from the corpus");
        let Some(program) = simplebpf_dsl::analyze(text).ir else {
            continue;
        };
        let Ok(emitted) = backend::emit(
            &program,
            &backend::Options {
                port,
                name: name.to_string(),
                test_hooks: false,
                strategy: Default::default(),
            },
        ) else {
            continue;
        };
        let _ = write!(
            out,
            "Policy `{name}`:\n```\n{}\n```\nA proven program for it:\n```c\n{}```\n\n",
            text.trim_end(),
            emitted.c_source
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_ranks_by_shared_words_and_leaves_the_policy_out() {
        let fault = CORPUS[0].1;
        let nearest = nearest(fault, 2);
        assert_eq!(nearest.len(), 2);
        assert!(!nearest.contains(&"fault"));
        // logging_fault and fault_condition share randomf, prob, send(err(..)).
        assert!(nearest.contains(&"logging_fault"), "{nearest:?}");
        assert!(similarity(fault, CORPUS[6].1) > similarity(fault, CORPUS[2].1));
        // Deterministic.
        assert_eq!(nearest, super::nearest(fault, 2));
    }

    #[test]
    fn the_facts_give_the_exact_threshold() {
        let program = simplebpf_dsl::analyze(CORPUS[0].1).ir.unwrap();
        let facts = facts(&program, 9000);
        assert!(
            facts.contains("randomf(0, 1) < 19/20 is exactly bpf_get_prandom_u32() < 4080218932u")
                || facts.contains(
                    "randomf(0, 1) < 0.95 is exactly bpf_get_prandom_u32() < 4080218932u"
                ),
            "{facts}"
        );
    }

    #[test]
    fn the_templates_are_versioned_and_hashed() {
        for template in [SYSTEM, USER, FEEDBACK] {
            assert!(template.starts_with("prompt version "));
        }
        assert_eq!(templates_sha256().len(), 64);
    }
}
