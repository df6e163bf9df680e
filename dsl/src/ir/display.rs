//! The IR's text form: deterministic, one statement a line, every operation named with the
//! type it works in. Snapshot tests read it.

use std::fmt::{self, Write};

use super::*;

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for var in &self.state {
            write!(f, "state @{}: {}", var.name, var.ty)?;
            if let Some(capacity) = var.capacity {
                write!(f, " capacity {capacity}")?;
            }
            if !var.written_by_handlers {
                write!(f, " const")?;
            }
            for (name, arg) in &var.decorators {
                write!(f, " @{name}({arg})")?;
            }
            writeln!(f)?;
        }
        for handler in [&self.init, &self.req, &self.resp] {
            writeln!(f)?;
            let printer = Printer {
                program: self,
                handler,
            };
            let mut out = String::new();
            printer.handler(&mut out);
            f.write_str(&out)?;
        }
        Ok(())
    }
}

impl fmt::Display for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Const::Int(value) => write!(f, "{value}"),
            Const::Uint(value) => write!(f, "{value}u"),
            Const::Float(value) => write!(f, "{}", crate::decimal::to_decimal_string(value)),
            Const::Bool(value) => write!(f, "{value}"),
            Const::Str(text) => write!(f, "'{text}'"),
        }
    }
}

struct Printer<'a> {
    program: &'a Program,
    handler: &'a Handler,
}

impl Printer<'_> {
    fn handler(&self, out: &mut String) {
        let handler = self.handler;
        let _ = writeln!(
            out,
            "{}({}):",
            handler.kind.as_str(),
            handler.rpc.as_deref().unwrap_or("")
        );
        for local in &handler.locals {
            let _ = writeln!(out, "  local %{}: {}", local.name, local.ty);
        }
        self.block(out, &handler.body, 1);
    }

    fn block(&self, out: &mut String, block: &Block, level: usize) {
        if block.is_empty() {
            indent(out, level);
            out.push_str("pass\n");
        }
        for stmt in block {
            self.stmt(out, stmt, level);
        }
    }

    fn stmt(&self, out: &mut String, stmt: &Stmt, level: usize) {
        indent(out, level);
        match stmt {
            Stmt::Assign { place, value, .. } => {
                let _ = writeln!(out, "{} = {}", self.place(place), self.expr(value));
            }
            Stmt::Unpack {
                first,
                second,
                value,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "(%{}, %{}) = {}",
                    self.handler.local(*first).name,
                    self.handler.local(*second).name,
                    self.expr(value)
                );
            }
            Stmt::MapSet {
                map, key, value, ..
            } => {
                let _ = writeln!(
                    out,
                    "map_set @{}[{}] = {}",
                    self.program.state_var(*map).name,
                    self.expr(key),
                    self.expr(value)
                );
            }
            Stmt::MapDelete { map, key, .. } => {
                let _ = writeln!(
                    out,
                    "map_delete @{}[{}]",
                    self.program.state_var(*map).name,
                    self.expr(key)
                );
            }
            Stmt::VecAppend { vec, value, .. } => {
                let _ = writeln!(out, "append {} {}", self.vec_ref(vec), self.expr(value));
            }
            Stmt::Eval { value } => {
                let _ = writeln!(out, "eval {}", self.expr(value));
            }
            Stmt::If {
                cond,
                then_block,
                else_block,
            } => {
                let _ = writeln!(out, "if {}:", self.expr(cond));
                self.block(out, then_block, level + 1);
                indent(out, level);
                out.push_str("else:\n");
                self.block(out, else_block, level + 1);
            }
            Stmt::Switch {
                scrutinee,
                cases,
                default,
            } => {
                let _ = writeln!(out, "switch {}:", self.expr(scrutinee));
                for (value, block) in cases {
                    indent(out, level);
                    let _ = writeln!(out, "case {value}:");
                    self.block(out, block, level + 1);
                }
                if let Some(block) = default {
                    indent(out, level);
                    out.push_str("default:\n");
                    self.block(out, block, level + 1);
                }
            }
            Stmt::MatchOption {
                scrutinee,
                binding,
                some_block,
                none_block,
            } => {
                let _ = writeln!(out, "match_option {}:", self.expr(scrutinee));
                indent(out, level);
                match binding {
                    Some(local) => {
                        let _ = writeln!(out, "some %{}:", self.handler.local(*local).name);
                    }
                    None => out.push_str("some _:\n"),
                }
                self.block(out, some_block, level + 1);
                indent(out, level);
                out.push_str("none:\n");
                self.block(out, none_block, level + 1);
            }
            Stmt::Send { action, .. } => match action {
                Action::Forward => out.push_str("send forward\n"),
                Action::Reject { reason } => {
                    let _ = writeln!(out, "send reject {}", self.expr(reason));
                }
            },
            Stmt::Opaque {
                feature,
                args,
                body,
                ..
            } => {
                let _ = writeln!(out, "opaque `{}`({}):", feature.construct, self.exprs(args));
                self.block(out, body, level + 1);
            }
        }
    }

    fn place(&self, place: &Place) -> String {
        match place {
            Place::State(id) => format!("@{}", self.program.state_var(*id).name),
            Place::Local(id) => format!("%{}", self.handler.local(*id).name),
        }
    }

    fn vec_ref(&self, vec: &VecRef) -> String {
        match vec {
            VecRef::State(id) => format!("@{}", self.program.state_var(*id).name),
            VecRef::Local(id) => format!("%{}", self.handler.local(*id).name),
        }
    }

    fn exprs(&self, exprs: &[Expr]) -> String {
        exprs
            .iter()
            .map(|e| self.expr(e))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn expr(&self, expr: &Expr) -> String {
        match &expr.kind {
            ExprKind::Const(value) => value.to_string(),
            ExprKind::State(id) => format!("@{}", self.program.state_var(*id).name),
            ExprKind::Local(id) => format!("%{}", self.handler.local(*id).name),
            ExprKind::Arith { op, lhs, rhs } => {
                let name = match op {
                    ArithOp::Add => "add",
                    ArithOp::Sub => "sub",
                    ArithOp::Mul => "mul",
                    ArithOp::Div => "div",
                };
                format!("{name}.{}({}, {})", expr.ty, self.expr(lhs), self.expr(rhs))
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let name = match op {
                    CmpOp::Eq => "eq",
                    CmpOp::Ne => "ne",
                    CmpOp::Lt => "lt",
                    CmpOp::Gt => "gt",
                    CmpOp::Le => "le",
                    CmpOp::Ge => "ge",
                };
                format!("{name}.{}({}, {})", lhs.ty, self.expr(lhs), self.expr(rhs))
            }
            ExprKind::And(lhs, rhs) => format!("and({}, {})", self.expr(lhs), self.expr(rhs)),
            ExprKind::Or(lhs, rhs) => format!("or({}, {})", self.expr(lhs), self.expr(rhs)),
            ExprKind::MinMax { op, lhs, rhs } => {
                let name = match op {
                    MinMax::Min => "min",
                    MinMax::Max => "max",
                };
                format!("{name}.{}({}, {})", expr.ty, self.expr(lhs), self.expr(rhs))
            }
            ExprKind::ToFloat(inner) => format!("to_float({})", self.expr(inner)),
            ExprKind::InstantSeconds(inner) => format!("seconds({})", self.expr(inner)),
            ExprKind::Randomf { lo, hi } => {
                format!("randomf({}, {})", self.expr(lo), self.expr(hi))
            }
            ExprKind::Now => "now".to_string(),
            ExprKind::TimeDiff(a, b) => format!("time_diff({}, {})", self.expr(a), self.expr(b)),
            ExprKind::MapGet { map, key } => format!(
                "map_get @{}[{}]",
                self.program.state_var(*map).name,
                self.expr(key)
            ),
            ExprKind::PayloadLen => "payload_len".to_string(),
            ExprKind::VecSize(vec) => format!("size({})", self.vec_ref(vec)),
            ExprKind::Pair(a, b) => format!("pair({}, {})", self.expr(a), self.expr(b)),
            ExprKind::Opaque { feature, args } => {
                format!(
                    "opaque `{}`({}): {}",
                    feature.construct,
                    self.exprs(args),
                    expr.ty
                )
            }
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}
