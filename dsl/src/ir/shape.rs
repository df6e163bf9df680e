//! Comparing IR by what it means rather than where it was written: two `send(rpc, Down)` at
//! different lines are the same statement. Rewrites that merge equal branches ask this.

use super::*;

/// Whether two blocks are the same statements, spans aside.
pub fn same_shape(a: &Block, b: &Block) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    erase_block(&mut a);
    erase_block(&mut b);
    a == b
}

fn erase_block(block: &mut Block) {
    block.iter_mut().for_each(erase_stmt);
}

fn erase_stmt(stmt: &mut Stmt) {
    match stmt {
        Stmt::Assign { value, span, .. } | Stmt::Unpack { value, span, .. } => {
            *span = Span::default();
            erase_expr(value);
        }
        Stmt::MapSet {
            key, value, span, ..
        } => {
            *span = Span::default();
            erase_expr(key);
            erase_expr(value);
        }
        Stmt::MapDelete { key, span, .. } => {
            *span = Span::default();
            erase_expr(key);
        }
        Stmt::VecAppend { value, span, .. } => {
            *span = Span::default();
            erase_expr(value);
        }
        Stmt::Eval { value } => erase_expr(value),
        Stmt::If {
            cond,
            then_block,
            else_block,
        } => {
            erase_expr(cond);
            erase_block(then_block);
            erase_block(else_block);
        }
        Stmt::Switch {
            scrutinee,
            cases,
            default,
        } => {
            erase_expr(scrutinee);
            cases.iter_mut().for_each(|(_, block)| erase_block(block));
            if let Some(block) = default {
                erase_block(block);
            }
        }
        Stmt::MatchOption {
            scrutinee,
            some_block,
            none_block,
            ..
        } => {
            erase_expr(scrutinee);
            erase_block(some_block);
            erase_block(none_block);
        }
        Stmt::Send { action, span } => {
            *span = Span::default();
            if let Action::Reject { reason } = action {
                erase_expr(reason);
            }
        }
        Stmt::Opaque {
            args, body, span, ..
        } => {
            *span = Span::default();
            args.iter_mut().for_each(erase_expr);
            erase_block(body);
        }
    }
}

fn erase_expr(expr: &mut Expr) {
    expr.span = Span::default();
    match &mut expr.kind {
        ExprKind::Arith { lhs, rhs, .. }
        | ExprKind::Compare { lhs, rhs, .. }
        | ExprKind::MinMax { lhs, rhs, .. }
        | ExprKind::And(lhs, rhs)
        | ExprKind::Or(lhs, rhs)
        | ExprKind::TimeDiff(lhs, rhs)
        | ExprKind::Pair(lhs, rhs)
        | ExprKind::Randomf { lo: lhs, hi: rhs } => {
            erase_expr(lhs);
            erase_expr(rhs);
        }
        ExprKind::ToFloat(inner) | ExprKind::InstantSeconds(inner) => erase_expr(inner),
        ExprKind::MapGet { key, .. } => erase_expr(key),
        ExprKind::Opaque { args, .. } => args.iter_mut().for_each(erase_expr),
        ExprKind::Const(_)
        | ExprKind::State(_)
        | ExprKind::Local(_)
        | ExprKind::Now
        | ExprKind::PayloadLen
        | ExprKind::VecSize(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::lower;
    use crate::parser::parse;

    /// The two arms of a `match` on the payload size whose true arm adds 1 to `n` and whose
    /// false arm adds `other`, both then forwarding.
    fn arms(other: u32) -> (Block, Block) {
        let source = format!(
            "state:\n\tn: int\n\ninit():\n\tn = 0\n\nreq(rpc):\n\tmatch byte_size(rpc, 'body') > 10:\n\t\ttrue =>\n\t\t\tn = n + 1\n\t\t\tsend(rpc, Down)\n\t\tfalse =>\n\t\t\tn = n + {other}\n\t\t\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n"
        );
        let ast = parse(&source).expect("parses");
        let handler = lower(&ast).program.expect("lowers").req;
        match handler.body.into_iter().next() {
            Some(Stmt::If {
                then_block,
                else_block,
                ..
            }) => (then_block, else_block),
            other => panic!("an if: {other:?}"),
        }
    }

    #[test]
    fn the_same_statements_at_other_lines_have_the_same_shape() {
        let (then_block, else_block) = arms(1);
        assert_ne!(then_block, else_block, "the spans differ");
        assert!(same_shape(&then_block, &else_block));
    }

    #[test]
    fn different_statements_do_not() {
        let (then_block, else_block) = arms(2);
        assert!(!same_shape(&then_block, &else_block));
    }
}
