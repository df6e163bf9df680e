//! `branches=merged` (docs/optimizer.md): the `req` handler rewritten, IR to IR, into one
//! that means the same under the language's short-circuit `and` but branches less, so clang
//! emits fewer tests and a draw is taken only on the paths that need it.
//!
//! Two rewrites of the handler alone, both exact for every input:
//! - `if A { if B { X } else { Y } } else { Y }` is `if A and B { X } else { Y }`: when `A`
//!   fails, `B` is not evaluated either way.
//! - `r = <draw>; if P and Q { X } else { Y }`, where the conjuncts `P` neither read `r` nor
//!   have an effect, becomes `if P { r = <draw>; if Q { X } else { Y } } else { Y }`. The draw is
//!   skipped where `P` is false. Only a draw after which no other draw is taken on that path
//!   may be skipped, because the checker matches draws by order (the k-th
//!   `bpf_get_prandom_u32` is the policy's k-th draw); and nothing else may read `r`.
//!
//!
//! And one that hands a test to the RPC filter (with the fused filter only, whose length
//! check takes it for free): `if P and byte_size(rpc, _) > K { X } else { forward }` as the
//! first statement forwards a payload of at most `K` bytes untouched, exactly as a frame that
//! is not an RPC passes, so the filter refuses those and the handler keeps `if P { X } else
//! { forward }` (`fold_min_payload`).
//!
//! The checker, not this module, is what makes a program under this strategy correct: the
//! search judges each one through the gate.

use simplebpf_dsl::ir::{
    Action, ArithOp, Block, CmpOp, Const, Expr, ExprKind, Handler, LocalId, Place, StateId, Stmt,
    Type, same_shape, walk_expr,
};

use super::analysis::any_expr;
use super::handler::has_draw;

/// The handler with both rewrites applied wherever they fit.
pub fn merge_branches(handler: &Handler) -> Handler {
    let mut merged = handler.clone();
    flatten(&mut merged.body);
    sink_draws(&mut merged.body);
    merged
}

/// Nested `if`s sharing their `else`, inside out, so that a chain of them becomes one.
fn flatten(block: &mut Block) {
    for stmt in block.iter_mut() {
        for nested in sub_blocks(stmt) {
            flatten(nested);
        }
        let Stmt::If {
            cond,
            then_block,
            else_block,
        } = stmt
        else {
            continue;
        };
        let [
            Stmt::If {
                cond: inner,
                then_block: inner_then,
                else_block: inner_else,
            },
        ] = then_block.as_mut_slice()
        else {
            continue;
        };
        if !same_shape(inner_else, else_block) {
            continue;
        }
        let both = and(cond.clone(), inner.clone());
        *then_block = std::mem::take(inner_then);
        *cond = both;
    }
}

fn sub_blocks(stmt: &mut Stmt) -> Vec<&mut Block> {
    match stmt {
        Stmt::If {
            then_block,
            else_block,
            ..
        } => vec![then_block, else_block],
        Stmt::Switch { cases, default, .. } => cases
            .iter_mut()
            .map(|(_, block)| block)
            .chain(default.iter_mut())
            .collect(),
        Stmt::MatchOption {
            some_block,
            none_block,
            ..
        } => vec![some_block, none_block],
        _ => Vec::new(),
    }
}

/// The draw-sinking rewrite on the handler's top level, where "no draw after it" is the rest
/// of the block.
fn sink_draws(body: &mut Block) {
    let mut index = 0;
    while index + 1 < body.len() {
        if let Some(sunk) = sink_at(body, index) {
            body.splice(index..index + 2, [sunk]);
        }
        index += 1;
    }
}

fn sink_at(body: &Block, index: usize) -> Option<Stmt> {
    let Stmt::Assign {
        place: Place::Local(local),
        value,
        span,
    } = &body[index]
    else {
        return None;
    };
    if !has_draw(value) || !movable_draw(value) || reads_local(value, *local) {
        return None;
    }
    let Stmt::If {
        cond,
        then_block,
        else_block,
    } = &body[index + 1]
    else {
        return None;
    };
    let rest = &body[index + 2..];
    if block_has_draw(else_block) || block_has_draw(rest) {
        return None;
    }
    let elsewhere = [&body[..index], else_block.as_slice(), rest];
    if elsewhere.iter().any(|block| block_reads(block, *local)) {
        return None;
    }
    let (first, later): (Vec<Expr>, Vec<Expr>) = conjuncts(cond)
        .into_iter()
        .partition(|c| !reads_local(c, *local) && total(c));
    let (Some(first), Some(later)) = (and_all(first), and_all(later)) else {
        return None;
    };
    Some(Stmt::If {
        cond: first,
        then_block: vec![
            Stmt::Assign {
                place: Place::Local(*local),
                value: value.clone(),
                span: *span,
            },
            Stmt::If {
                cond: later,
                then_block: then_block.clone(),
                else_block: else_block.clone(),
            },
        ],
        else_block: else_block.clone(),
    })
}

/// A handler whose first test on the payload size moved into the RPC filter.
#[derive(Debug)]
pub struct MinPayload {
    pub handler: Handler,
    /// Payloads shorter than this are refused by the filter.
    pub bytes: u64,
}

/// `if P and byte_size(rpc, _) > K and Q { X } else { forward }` as the handler's first
/// statement, with `P` free of effects: a payload of at most `K` bytes is forwarded
/// untouched, which is what happens to a frame that is not an RPC at all, so the filter may
/// refuse it instead, and the handler keeps `if P and Q { X } else { forward }`. `value` is
/// the build-time value of a state variable no handler writes (`min_size` in
/// fault_condition), if it has one.
pub fn fold_min_payload(
    handler: &Handler,
    value: &dyn Fn(StateId) -> Option<i128>,
) -> Option<MinPayload> {
    let (first, rest) = handler.body.split_first()?;
    let Stmt::If {
        cond,
        then_block,
        else_block,
    } = first
    else {
        return None;
    };
    if !matches!(
        else_block.as_slice(),
        [Stmt::Send {
            action: Action::Forward,
            ..
        }]
    ) {
        return None;
    }
    let all = conjuncts(cond);
    let (index, bytes) = all.iter().enumerate().find_map(|(index, c)| {
        let bytes = minimum_payload(c, value)?;
        all[..index].iter().all(total).then_some((index, bytes))
    })?;
    let others: Vec<Expr> = all
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| (i != index).then_some(c))
        .collect();
    let mut body = match and_all(others) {
        Some(cond) => vec![Stmt::If {
            cond,
            then_block: then_block.clone(),
            else_block: else_block.clone(),
        }],
        None => then_block.clone(),
    };
    body.extend(rest.iter().cloned());
    Some(MinPayload {
        handler: Handler {
            body,
            ..handler.clone()
        },
        bytes,
    })
}

/// The least payload length for which `expr` holds, when it is `byte_size(rpc, _) > K` (or
/// `>=`, or the sides swapped) with `K` known at build time and within a payload's range.
fn minimum_payload(expr: &Expr, value: &dyn Fn(StateId) -> Option<i128>) -> Option<u64> {
    let ExprKind::Compare { op, lhs, rhs } = &expr.kind else {
        return None;
    };
    let known = |e: &Expr| match &e.kind {
        ExprKind::Const(Const::Int(v)) => Some(i128::from(*v)),
        ExprKind::Const(Const::Uint(v)) => Some(i128::from(*v)),
        ExprKind::State(id) => value(*id),
        _ => None,
    };
    let least = match (&lhs.kind, op, &rhs.kind) {
        (ExprKind::PayloadLen, CmpOp::Gt, _) => known(rhs)? + 1,
        (ExprKind::PayloadLen, CmpOp::Ge, _) => known(rhs)?,
        (_, CmpOp::Lt, ExprKind::PayloadLen) => known(lhs)? + 1,
        (_, CmpOp::Le, ExprKind::PayloadLen) => known(lhs)?,
        _ => return None,
    };
    // At most the largest payload a UDP length can carry: beyond it nothing is an RPC.
    u64::try_from(least)
        .ok()
        .filter(|bytes| (1..=65535 - 8).contains(bytes))
}

fn conjuncts(expr: &Expr) -> Vec<Expr> {
    match &expr.kind {
        ExprKind::And(lhs, rhs) => {
            let mut all = conjuncts(lhs);
            all.extend(conjuncts(rhs));
            all
        }
        _ => vec![expr.clone()],
    }
}

fn and(lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Expr {
        kind: ExprKind::And(Box::new(lhs), Box::new(rhs)),
        ty: Type::Bool,
        span,
    }
}

fn and_all(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(and)
}

/// A conjunct that may run earlier and more often than written: it has no effect (no draw,
/// no map read, nothing opaque), so evaluating it first changes nothing. A division is kept
/// where the policy put it too: `x / 0` is 0 in the language, so moving one would be exact,
/// but a division by a run-time value costs a guarded helper call on every packet.
fn total(expr: &Expr) -> bool {
    let mut total = true;
    walk_expr(expr, &mut |e| {
        total &= !matches!(
            e.kind,
            ExprKind::Randomf { .. }
                | ExprKind::MapGet { .. }
                | ExprKind::Opaque { .. }
                | ExprKind::Arith {
                    op: ArithOp::Div,
                    ..
                }
        );
    });
    total
}

/// A drawn value whose only effect is the draw (no map reads), so moving it moves nothing
/// else.
fn movable_draw(expr: &Expr) -> bool {
    let mut movable = true;
    walk_expr(expr, &mut |e| {
        movable &= !matches!(e.kind, ExprKind::MapGet { .. } | ExprKind::Opaque { .. });
    });
    movable
}

fn reads_local(expr: &Expr, local: LocalId) -> bool {
    let mut reads = false;
    walk_expr(expr, &mut |e| {
        reads |= matches!(e.kind, ExprKind::Local(id) if id == local);
    });
    reads
}

fn block_reads(block: &[Stmt], local: LocalId) -> bool {
    any_expr(
        block,
        &mut |e| matches!(e.kind, ExprKind::Local(id) if id == local),
    )
}

fn block_has_draw(block: &[Stmt]) -> bool {
    any_expr(block, &mut |e| matches!(e.kind, ExprKind::Randomf { .. }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use simplebpf_dsl::ast::HandlerKind;
    use simplebpf_dsl::interp::{self, Inputs, Request};
    use simplebpf_dsl::ir::Program;

    use super::*;

    /// The policy's `req` merged, printed as the IR's text form.
    fn merged(req: &str) -> String {
        let source = format!(
            "state:\n\tn: int\n\ninit():\n\tn = 0\n\nreq(rpc):\n{req}\nresp(rpc):\n\tsend(rpc, Up)\n"
        );
        let analysis = simplebpf_dsl::analyze(&source);
        let program = analysis
            .ir
            .unwrap_or_else(|| panic!("{:?}", analysis.diagnostics));
        let after = Program {
            req: merge_branches(&program.req),
            ..program.clone()
        };
        let before = program.req.body.clone();
        let changed = after.req.body != before;
        let text = after.to_string();
        let req = &text[text.find("req(").unwrap()..text.find("resp(").unwrap()];
        format!("changed: {changed}\n{}", req.trim_end())
    }

    #[test]
    fn nested_tests_sharing_their_other_arm_merge_and_the_draw_moves_after_the_packet_test() {
        insta::assert_snapshot!(merged(
            "\tr = randomf(0, 1)\n\tmatch r < 0.5:\n\t\ttrue =>\n\t\t\tmatch (r < 0.1) and (byte_size(rpc, 'body') > 100):\n\t\t\t\ttrue =>\n\t\t\t\t\tsend(err('no'), Up)\n\t\t\t\tfalse =>\n\t\t\t\t\tsend(rpc, Down)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n"
        ));
    }

    /// Handlers neither rewrite may change, each with the reason.
    const LEFT_ALONE: &[(&str, &str)] = &[
        (
            "the inner match's other arm is not the outer one's",
            "\tmatch byte_size(rpc, 'body') > 10:\n\t\ttrue =>\n\t\t\tmatch byte_size(rpc, 'body') > 100:\n\t\t\t\ttrue =>\n\t\t\t\t\tsend(err('no'), Up)\n\t\t\t\tfalse =>\n\t\t\t\t\tn = n + 1\n\t\t\t\t\tsend(rpc, Down)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n",
        ),
        (
            "the draw is read after the test",
            "\tr = randomf(0, 1)\n\tmatch byte_size(rpc, 'body') > 100 and r < 0.5:\n\t\ttrue =>\n\t\t\tn = n + 1\n\t\tfalse =>\n\t\t\tpass\n\tmatch r < 0.1:\n\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n",
        ),
        (
            // The checker matches draws by order: skipping the first would shift the second.
            "another draw comes after it",
            "\tr = randomf(0, 1)\n\tmatch byte_size(rpc, 'body') > 100 and r < 0.5:\n\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tpass\n\tmatch randomf(0, 1) < 0.1:\n\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n",
        ),
        (
            // Taken first, it would get the first draw's value.
            "a second draw in the test",
            "\tr = randomf(0, 1)\n\tmatch r < 0.5 and randomf(0, 1) < 0.3:\n\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n",
        ),
        (
            // A division by a run-time value is a guarded helper call: it stays where the
            // policy evaluates it.
            "a division in the test",
            "\tr = randomf(0, 1)\n\tmatch r < 0.5 and 100 / n > 3:\n\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n",
        ),
    ];

    #[test]
    fn handlers_the_rewrites_do_not_fit_stay_as_written() {
        for (why, req) in LEFT_ALONE {
            let out = merged(req);
            assert!(out.starts_with("changed: false"), "{why}:\n{out}");
        }
    }

    /// The payload length `fold_min_payload` moves into the filter, if any, with `n` known
    /// to be 100 at build time.
    fn folded_bytes(req: &str) -> Option<u64> {
        let source = format!(
            "state:\n\tn: int\n\tm: int\n\ninit():\n\tn = 100\n\nreq(rpc):\n{req}\nresp(rpc):\n\tsend(rpc, Up)\n"
        );
        let program = simplebpf_dsl::analyze(&source).ir.unwrap();
        let n = |id: StateId| (id.0 == 0).then_some(100);
        fold_min_payload(&merge_branches(&program.req), &n).map(|fold| fold.bytes)
    }

    #[test]
    fn a_first_size_test_whose_other_arm_forwards_moves_into_the_filter() {
        let then = "\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n";
        let fold = |cond: &str| folded_bytes(&format!("\tmatch {cond}:\n{then}"));
        assert_eq!(fold("byte_size(rpc, 'body') > n"), Some(101));
        assert_eq!(fold("byte_size(rpc, 'body') >= 100"), Some(100));
        assert_eq!(fold("100 < byte_size(rpc, 'body')"), Some(101));
        assert_eq!(fold("m == 0 and byte_size(rpc, 'body') > 7"), Some(8));
        // Nothing to fold: no lower bound, a bound no payload passes, a run-time bound.
        assert_eq!(fold("byte_size(rpc, 'body') < 100"), None);
        assert_eq!(fold("byte_size(rpc, 'body') > 65527"), None);
        assert_eq!(fold("byte_size(rpc, 'body') > m"), None);
    }

    #[test]
    fn a_size_test_is_not_folded_when_a_short_payload_does_more_than_forward() {
        // The other arm rejects; something runs before the test.
        assert_eq!(
            folded_bytes(
                "\tmatch byte_size(rpc, 'body') > 10:\n\t\ttrue =>\n\t\t\tsend(rpc, Down)\n\t\tfalse =>\n\t\t\tsend(err('short'), Up)\n"
            ),
            None
        );
        assert_eq!(
            folded_bytes(
                "\tm = m + 1\n\tmatch byte_size(rpc, 'body') > 10:\n\t\ttrue =>\n\t\t\tsend(err('no'), Up)\n\t\tfalse =>\n\t\t\tsend(rpc, Down)\n"
            ),
            None
        );
    }

    /// A small deterministic generator of `req` handlers that exercise both rewrites: a
    /// leading draw, nested matches that share their other arm, packet, state and draw tests
    /// joined by `and`, a division, and sometimes a later draw.
    struct Gen {
        state: u64,
        drawn: bool,
    }

    impl Gen {
        fn below(&mut self, n: u64) -> u64 {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.state % n
        }

        fn atom(&mut self) -> String {
            let k = self.below(300);
            match self.below(if self.drawn { 6 } else { 4 }) {
                0 => format!("byte_size(rpc, 'body') > {k}"),
                // A second draw inside a test: it may not move ahead of anything.
                1 if k < 40 => format!("randomf(0, 1) < 0.{}", 1 + k % 9),
                1 => format!("n > {}", k % 20),
                2 => format!("100 / n > {}", k % 30),
                3 => "m == 0".to_string(),
                4 => format!("r < 0.{}", 1 + k % 9),
                _ => format!("r >= 0.{}", 1 + k % 9),
            }
        }

        fn cond(&mut self) -> String {
            let mut atoms = vec![self.atom()];
            for _ in 0..self.below(3) {
                atoms.push(self.atom());
            }
            atoms.join(" and ")
        }

        fn stmt(&mut self, depth: usize) -> String {
            let choice = self.below(if depth > 5 { 4 } else { 7 });
            self.stmt_of(depth, choice)
        }

        fn stmt_of(&mut self, depth: usize, choice: u64) -> String {
            let tabs = "\t".repeat(depth);
            match choice {
                0 => format!("{tabs}m = m + 1\n"),
                1 => format!("{tabs}n = n - 3\n"),
                2 => format!("{tabs}send(err('no'), Up)\n"),
                3 => format!("{tabs}send(rpc, Down)\n"),
                4 => {
                    let (then, other) = (self.block(depth + 2), self.block(depth + 2));
                    let cond = self.cond();
                    format!("{tabs}match {cond}:\n{tabs}\ttrue =>\n{then}{tabs}\tfalse =>\n{other}")
                }
                5 => {
                    // The shape `flatten` merges: the inner match's other arm is the outer's.
                    let other = self.block(depth + 4);
                    let outer_other: String = other
                        .lines()
                        .map(|line| format!("{}\n", &line[2..]))
                        .collect();
                    let then = self.block(depth + 4);
                    let (outer, inner) = (self.cond(), self.cond());
                    format!(
                        "{tabs}match {outer}:\n{tabs}\ttrue =>\n{tabs}\t\tmatch {inner}:\n{tabs}\t\t\ttrue =>\n{then}{tabs}\t\t\tfalse =>\n{other}{tabs}\tfalse =>\n{outer_other}"
                    )
                }
                6 => {
                    let (then, other) = (self.block(depth + 2), self.block(depth + 2));
                    format!(
                        "{tabs}match randomf(0, 1) < 0.3:\n{tabs}\ttrue =>\n{then}{tabs}\tfalse =>\n{other}"
                    )
                }
                _ => {
                    // The shape `fold_min_payload` folds: a size test among others, the
                    // other arm forwarding.
                    let then = self.block(depth + 2);
                    let size = format!("byte_size(rpc, 'body') > {}", self.below(300));
                    let cond = match self.below(3) {
                        0 => size,
                        1 => format!("{size} and {}", self.cond()),
                        _ => format!("{} and {size}", self.cond()),
                    };
                    format!(
                        "{tabs}match {cond}:\n{tabs}\ttrue =>\n{then}{tabs}\tfalse =>\n{tabs}\t\tsend(rpc, Down)\n"
                    )
                }
            }
        }

        fn block(&mut self, depth: usize) -> String {
            (0..1 + self.below(2)).map(|_| self.stmt(depth)).collect()
        }

        fn policy(seed: u64) -> String {
            let mut gen_ = Gen {
                state: seed | 1,
                drawn: false,
            };
            let mut req = String::new();
            if gen_.below(4) > 0 {
                req.push_str("\tr = randomf(0, 1)\n");
                gen_.drawn = true;
            }
            // Half the time a test right after the draw, which is where a draw can move, or
            // one a filter can take.
            if gen_.below(2) == 0 {
                let choice = 4 + gen_.below(2) * 3;
                req.push_str(&gen_.stmt_of(1, choice));
            } else if gen_.drawn && gen_.below(2) == 0 {
                req.push_str(&gen_.stmt_of(1, 5));
            }
            for _ in 0..1 + gen_.below(2) {
                req.push_str(&gen_.stmt(1));
            }
            format!(
                "state:\n\tn: int\n\tm: int\n\ninit():\n\tn = 7\n\tm = 0\n\nreq(rpc):\n{req}\nresp(rpc):\n\tsend(rpc, Up)\n"
            )
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The law the rewrites rest on: the merged handler does what the policy does for
        /// every input (action, state, records), and takes a prefix of its draws.
        #[test]
        fn merged_branches_mean_the_same(
            seed in any::<u64>(),
            inputs in prop::collection::vec(
                (0u64..400, -20i64..40, 0i64..2, prop::collection::vec(any::<u32>(), 64)),
                16,
            ),
        ) {
            let source = Gen::policy(seed);
            let analysis = simplebpf_dsl::analyze(&source);
            let Some(program) = analysis.ir else {
                panic!("{source}\n{:?}", analysis.diagnostics);
            };
            let merged = Program {
                req: merge_branches(&program.req),
                ..program.clone()
            };
            // The filter's share of the law: below the folded minimum the policy forwards
            // and changes nothing, at or above it the folded handler does what it does.
            let folded = fold_min_payload(&merged.req, &|_| None).map(|fold| {
                (fold.bytes, Program { req: fold.handler, ..merged.clone() })
            });
            for (payload_len, n, m, draws) in inputs {
                let mut pre = interp::load(&program, &[], 0).unwrap().state;
                pre.vars.insert("n".into(), interp::Value::Int(n));
                pre.vars.insert("m".into(), interp::Value::Int(m));
                let inputs = Inputs {
                    request: Request { payload_len },
                    draws: &draws,
                    time_ns: 0,
                };
                let before = interp::run(&program, HandlerKind::Req, &pre, &inputs).unwrap();
                let after = interp::run(&merged, HandlerKind::Req, &pre, &inputs).unwrap();
                prop_assert_eq!(&after.action, &before.action, "{}\n{}", source, merged);
                prop_assert_eq!(&after.state, &before.state, "{}\n{}", source, merged);
                prop_assert_eq!(&after.records, &before.records, "{}", source);
                prop_assert!(after.draws_used <= before.draws_used, "{}", source);
                if let Some((bytes, folded)) = &folded {
                    if payload_len < *bytes {
                        prop_assert_eq!(&before.action, &interp::Action::Forward, "{}", source);
                        prop_assert_eq!(&before.state, &pre, "{}", source);
                        prop_assert!(before.records.is_empty(), "{}", source);
                    } else {
                        let after = interp::run(folded, HandlerKind::Req, &pre, &inputs).unwrap();
                        prop_assert_eq!(&after.action, &before.action, "{}\n{}", source, folded);
                        prop_assert_eq!(&after.state, &before.state, "{}\n{}", source, folded);
                    }
                }
            }
        }
    }

    /// The law above is only as good as the policies it sees: most of them must be changed
    /// by the rewrites, by each of the two.
    #[test]
    fn the_generated_policies_exercise_every_rewrite() {
        let (mut flattened, mut sunk, mut folded) = (0, 0, 0);
        for seed in 0..200 {
            let program = simplebpf_dsl::analyze(&Gen::policy(seed)).ir.unwrap();
            let mut body = program.req.body.clone();
            flatten(&mut body);
            flattened += usize::from(body != program.req.body);
            let before = body.clone();
            sink_draws(&mut body);
            sunk += usize::from(body != before);
            let merged = Handler {
                body,
                ..program.req.clone()
            };
            folded += usize::from(fold_min_payload(&merged, &|_| None).is_some());
        }
        let counts = format!("flattened {flattened}, sunk {sunk}, folded {folded} of 200");
        eprintln!("{counts}");
        assert!(flattened >= 40 && sunk >= 20 && folded >= 10, "{counts}");
    }
}
