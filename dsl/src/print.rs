//! Prints a syntax tree back to source text that parses to the same tree.
//!
//! Parentheses are part of the tree (`ExprKind::Paren`), so the printer writes exactly the
//! parentheses the tree has; indentation is one tab per level.

use std::fmt::Write;

use crate::ast::*;

pub fn print_program(program: &Program) -> String {
    let mut out = String::new();
    out.push_str("state:\n");
    if program.state.vars.is_empty() {
        out.push_str("\tpass\n");
    }
    for var in &program.state.vars {
        if !var.decorators.is_empty() {
            out.push('\t');
            let decorators: Vec<String> = var.decorators.iter().map(decorator).collect();
            out.push_str(&decorators.join(" "));
            out.push('\n');
        }
        let _ = writeln!(out, "\t{}: {}", var.name.name, type_expr(&var.ty));
    }
    for handler in [&program.init, &program.req, &program.resp] {
        out.push('\n');
        out.push_str(handler.kind.as_str());
        if let Some(params) = &handler.params {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            let _ = write!(out, "({})", names.join(", "));
        }
        out.push_str(":\n");
        block(&mut out, &handler.body, 1);
    }
    out
}

fn decorator(decorator: &Decorator) -> String {
    let arg = match &decorator.arg {
        DecoratorArg::Name(name) => name.clone(),
        DecoratorArg::Bool(value) => value.to_string(),
        DecoratorArg::Int(digits) => digits.clone(),
    };
    format!("@{}({arg})", decorator.name.name)
}

pub fn type_expr(ty: &TypeExpr) -> String {
    match ty {
        TypeExpr::Named(ident) => ident.name.clone(),
        TypeExpr::Pair(a, b, _) => format!("<{}, {}>", type_expr(a), type_expr(b)),
        TypeExpr::Vec(elem, _) => format!("Vec<{}>", type_expr(elem)),
        TypeExpr::Map(key, value, _) => format!("Map<{}, {}>", type_expr(key), type_expr(value)),
    }
}

fn block(out: &mut String, block: &Block, level: usize) {
    for stmt in &block.stmts {
        statement(out, stmt, level);
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push('\t');
    }
}

fn statement(out: &mut String, stmt: &Stmt, level: usize) {
    indent(out, level);
    match &stmt.kind {
        StmtKind::Pass => out.push_str("pass\n"),
        StmtKind::Expr(e) => {
            let _ = writeln!(out, "{}", expr(e));
        }
        StmtKind::Assign { target, value } => {
            let target = match target {
                Target::Single(name) => name.name.clone(),
                Target::Pair(a, b) => format!("({}, {})", a.name, b.name),
            };
            let _ = writeln!(out, "{target} = {}", expr(value));
        }
        StmtKind::Send { value, dir, .. } => {
            let value = match value {
                SendValue::Expr(e) => expr(e),
                SendValue::Err(e) => err_arg(e),
            };
            let dir = match dir {
                Direction::Up => "Up",
                Direction::Down => "Down",
            };
            let _ = writeln!(out, "send({value}, {dir})");
        }
        StmtKind::Match { scrutinee, arms } => {
            let _ = writeln!(out, "match {}:", expr(scrutinee));
            for arm in arms {
                indent(out, level + 1);
                let _ = writeln!(out, "{} =>", pattern(&arm.pattern));
                block(out, &arm.body, level + 2);
            }
        }
        StmtKind::Foreach {
            collection,
            param,
            body,
        } => {
            let _ = writeln!(out, "foreach({}, lambda({}):", collection.name, param.name);
            block(out, body, level + 1);
            indent(out, level);
            out.push_str(")\n");
        }
    }
}

fn err_arg(arg: &ErrArg) -> String {
    match &arg.value {
        ErrValue::Str(text) => format!("err('{text}')"),
        ErrValue::Name(name) => format!("err({})", name.name),
    }
}

fn pattern(pattern: &Pattern) -> String {
    match &pattern.kind {
        PatternKind::Literal(lit) => literal(lit),
        PatternKind::Name(name) => name.clone(),
        PatternKind::None => "None".to_string(),
        PatternKind::Some(binding) => format!("Some({})", binding.name),
        PatternKind::SomeErr(arg) => format!("Some({})", err_arg(arg)),
    }
}

pub fn literal(lit: &Literal) -> String {
    match lit {
        Literal::Int(digits) => digits.clone(),
        Literal::Float(text) => text.clone(),
        Literal::Str(text) => format!("'{text}'"),
        Literal::Bool(value) => value.to_string(),
    }
}

/// Prints an expression. Operands are printed as they are: a tree made by the parser already
/// has a `Paren` wherever precedence needs one.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Name(name) => name.clone(),
        ExprKind::Lit(lit) => literal(lit),
        ExprKind::Paren(inner) => format!("({})", expr(inner)),
        ExprKind::Pair(a, b) => format!("({}, {})", expr(a), expr(b)),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("{} {} {}", expr(lhs), op.as_str(), expr(rhs))
        }
        ExprKind::Builtin { op, target, args } => {
            let mut parts = vec![target.name.clone()];
            parts.extend(args.iter().map(expr));
            format!("{}({})", op.as_str(), parts.join(", "))
        }
        ExprKind::Call { func, args } => {
            let args: Vec<String> = args.iter().map(expr).collect();
            format!("{}({})", func.name, args.join(", "))
        }
    }
}
