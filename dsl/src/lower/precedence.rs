//! The warning for expressions that AppNet's own parser reads differently (LANGUAGE.md §1.4).
//!
//! AppNet has no operator precedence: `a + b * c` is `(a + b) * c` there. We use conventional
//! precedence, and warn wherever the two readings of an unparenthesised chain differ.

use crate::ast::{BinOp, Expr, ExprKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::print;

/// The warning for the operator chain rooted at `root`, if its readings differ.
pub(super) fn flat_reading(root: &Expr) -> Option<Diagnostic> {
    let mut operands: Vec<&Expr> = Vec::new();
    let mut ops: Vec<BinOp> = Vec::new();
    flatten(root, &mut operands, &mut ops);
    if ops.len() < 2 {
        return None;
    }
    let conventional = grouped(root);
    let mut flat = print::expr(operands[0]);
    for (op, operand) in ops.iter().zip(&operands[1..]) {
        flat = format!("({flat} {} {})", op.as_str(), print::expr(operand));
    }
    if flat == conventional {
        return None;
    }
    let strip = |text: &str| {
        text.strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(text)
            .to_string()
    };
    let (conventional, flat) = (strip(&conventional), strip(&flat));
    Some(
        Diagnostic::new(
            Code::FlatPrecedence,
            root.span,
            "AppNet reads this expression differently",
        )
        .with_label(format!("read here as `{conventional}`"))
        .with_note(format!(
            "AppNet's parser has no precedence and reads left to right: `{flat}`"
        ))
        .with_help(format!(
            "add parentheses to say which one you mean, e.g. `{conventional}`"
        )),
    )
}

/// The operands and operators of a chain, left to right, not looking inside parentheses.
fn flatten<'a>(e: &'a Expr, operands: &mut Vec<&'a Expr>, ops: &mut Vec<BinOp>) {
    match &e.kind {
        ExprKind::Binary { op, lhs, rhs, .. } => {
            flatten(lhs, operands, ops);
            ops.push(*op);
            flatten(rhs, operands, ops);
        }
        _ => operands.push(e),
    }
}

/// The chain printed with a pair of parentheses around every operator application.
fn grouped(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", grouped(lhs), op.as_str(), grouped(rhs))
        }
        _ => print::expr(e),
    }
}
