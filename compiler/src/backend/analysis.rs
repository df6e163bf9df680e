//! Facts about a handler the C backend decides with: which state `init` computes from the
//! clock (so it cannot be folded), which state `req` writes and reads (atomic add, a lock, or
//! neither, LANGUAGE.md §4.5), and how many draws one invocation can take at most.

use std::collections::BTreeSet;

use simplebpf_dsl::ir::{
    ArithOp, Block, Expr, ExprKind, Handler, LocalId, Place, Program, StateId, Stmt, Type, VecRef,
    stmt_exprs, walk_block, walk_expr,
};
use simplebpf_dsl::span::Span;

/// Whether `pred` holds of any expression in the block, nested blocks included.
pub(super) fn any_expr(block: &[Stmt], pred: &mut impl FnMut(&Expr) -> bool) -> bool {
    let mut found = false;
    walk_block(block, &mut |stmt| {
        for expr in stmt_exprs(stmt) {
            walk_expr(expr, &mut |e| found |= pred(e));
        }
    });
    found
}

pub fn reads_time(handler: &Handler) -> bool {
    any_expr(&handler.body, &mut |e| matches!(e.kind, ExprKind::Now))
}

/// The first `randomf` of a handler, if any.
pub fn first_draw(handler: &Handler) -> Option<Span> {
    let mut span = None;
    walk_block(&handler.body, &mut |stmt| {
        for expr in stmt_exprs(stmt) {
            walk_expr(expr, &mut |e| {
                if matches!(e.kind, ExprKind::Randomf { .. }) && span.is_none() {
                    span = Some(e.span);
                }
            });
        }
    });
    span
}

/// State variables whose value after `init` depends on the clock: directly, through a local,
/// or by being assigned under a condition that does.
pub fn init_time_dependent(init: &Handler) -> BTreeSet<StateId> {
    #[derive(Default)]
    struct Taint {
        states: BTreeSet<StateId>,
        locals: BTreeSet<LocalId>,
    }
    fn tainted(expr: &Expr, taint: &Taint) -> bool {
        let mut hit = false;
        walk_expr(expr, &mut |e| {
            hit |= match &e.kind {
                ExprKind::Now | ExprKind::Randomf { .. } => true,
                ExprKind::State(id) => taint.states.contains(id),
                ExprKind::Local(id) => taint.locals.contains(id),
                ExprKind::MapGet { map, .. } => taint.states.contains(map),
                _ => false,
            }
        });
        hit
    }
    fn block(stmts: &Block, under: bool, taint: &mut Taint) {
        for stmt in stmts {
            let hot = |e: &Expr, t: &Taint| under || tainted(e, t);
            match stmt {
                Stmt::Assign { place, value, .. } if hot(value, taint) => {
                    match place {
                        Place::State(id) => taint.states.insert(*id),
                        Place::Local(id) => taint.locals.insert(*id),
                    };
                }
                Stmt::Unpack {
                    first,
                    second,
                    value,
                    ..
                } if hot(value, taint) => {
                    taint.locals.insert(*first);
                    taint.locals.insert(*second);
                }
                Stmt::MapSet {
                    map, key, value, ..
                } if hot(key, taint) || hot(value, taint) => {
                    taint.states.insert(*map);
                }
                Stmt::MapDelete { map, key, .. } if hot(key, taint) => {
                    taint.states.insert(*map);
                }
                Stmt::VecAppend {
                    vec: VecRef::State(id),
                    value,
                    ..
                } if hot(value, taint) => {
                    taint.states.insert(*id);
                }
                Stmt::If {
                    cond,
                    then_block,
                    else_block,
                } => {
                    let inner = hot(cond, taint);
                    block(then_block, inner, taint);
                    block(else_block, inner, taint);
                }
                Stmt::Switch {
                    scrutinee,
                    cases,
                    default,
                } => {
                    let inner = hot(scrutinee, taint);
                    for (_, b) in cases {
                        block(b, inner, taint);
                    }
                    if let Some(b) = default {
                        block(b, inner, taint);
                    }
                }
                Stmt::MatchOption {
                    scrutinee,
                    binding,
                    some_block,
                    none_block,
                } => {
                    let inner = hot(scrutinee, taint);
                    if inner && let Some(id) = binding {
                        taint.locals.insert(*id);
                    }
                    block(some_block, inner, taint);
                    block(none_block, inner, taint);
                }
                _ => {}
            }
        }
    }
    // Two passes reach a fixed point for taint that flows backwards through later
    // assignments read earlier (locals are zero before their first assignment).
    let mut taint = Taint::default();
    block(&init.body, false, &mut taint);
    block(&init.body, false, &mut taint);
    taint.states
}

/// How `req` touches shared state, for LANGUAGE.md §4.5.
#[derive(Debug, Clone, Default)]
pub struct Sharing {
    /// `x = x + e` statements (by span) that become one atomic add.
    pub atomic_adds: BTreeSet<Span>,
    /// A read of written state outside an atomic add: the handler needs the lock.
    pub needs_lock: Option<Span>,
    /// Maps both read and written: a read-modify-write through helper calls.
    pub map_read_and_written: Option<(StateId, Span)>,
    /// A helper call (map or ring buffer) the lock would have to enclose.
    pub helper_call: Option<Span>,
}

/// What `req` shares with concurrent invocations of itself.
pub fn sharing(program: &Program, handler: &Handler, stored: &dyn Fn(StateId) -> bool) -> Sharing {
    let mut written: BTreeSet<StateId> = BTreeSet::new();
    walk_block(&handler.body, &mut |stmt| match stmt {
        Stmt::Assign {
            place: Place::State(id),
            ..
        }
        | Stmt::MapSet { map: id, .. }
        | Stmt::MapDelete { map: id, .. }
        | Stmt::VecAppend {
            vec: VecRef::State(id),
            ..
        } => {
            written.insert(*id);
        }
        _ => {}
    });
    let written: BTreeSet<StateId> = written.into_iter().filter(|id| stored(*id)).collect();

    // Locals that hold (something computed from) written state.
    let mut hot_locals: BTreeSet<LocalId> = BTreeSet::new();
    let reads_hot = |expr: &Expr, hot_locals: &BTreeSet<LocalId>| {
        let mut hit = None;
        walk_expr(expr, &mut |e| match &e.kind {
            ExprKind::State(id) | ExprKind::MapGet { map: id, .. } if written.contains(id) => {
                hit.get_or_insert(e.span);
            }
            ExprKind::VecSize(VecRef::State(id)) if written.contains(id) => {
                hit.get_or_insert(e.span);
            }
            ExprKind::Local(id) if hot_locals.contains(id) => {
                hit.get_or_insert(e.span);
            }
            _ => {}
        });
        hit
    };
    for _ in 0..2 {
        walk_block(&handler.body, &mut |stmt| match stmt {
            Stmt::Assign {
                place: Place::Local(id),
                value,
                ..
            } if reads_hot(value, &hot_locals).is_some() => {
                hot_locals.insert(*id);
            }
            Stmt::Unpack {
                first,
                second,
                value,
                ..
            } if reads_hot(value, &hot_locals).is_some() => {
                hot_locals.insert(*first);
                hot_locals.insert(*second);
            }
            Stmt::MatchOption {
                scrutinee,
                binding: Some(id),
                ..
            } if reads_hot(scrutinee, &hot_locals).is_some() => {
                hot_locals.insert(*id);
            }
            _ => {}
        });
    }

    let mut sharing = Sharing::default();
    let mut maps_read: BTreeSet<StateId> = BTreeSet::new();
    walk_block(&handler.body, &mut |stmt| {
        for expr in stmt_exprs(stmt) {
            walk_expr(expr, &mut |e| {
                if let ExprKind::MapGet { map, .. } = &e.kind
                    && stored(*map)
                {
                    maps_read.insert(*map);
                    sharing.helper_call.get_or_insert(e.span);
                }
            });
        }
        match stmt {
            Stmt::MapSet { map, span, .. } | Stmt::MapDelete { map, span, .. } if stored(*map) => {
                sharing.helper_call.get_or_insert(*span);
                if maps_read.contains(map) {
                    sharing.map_read_and_written.get_or_insert((*map, *span));
                }
            }
            Stmt::VecAppend { span, .. } => {
                sharing.helper_call.get_or_insert(*span);
            }
            _ => {}
        }
        if let Some(span) = atomic_add(program, stmt, &written, &|e| reads_hot(e, &hot_locals)) {
            sharing.atomic_adds.insert(span);
            return;
        }
        for expr in stmt_exprs(stmt) {
            if let Some(span) = reads_hot(expr, &hot_locals) {
                sharing.needs_lock.get_or_insert(span);
            }
        }
        // Writing a value that came from written state is a read-modify-write too.
        if let Stmt::MatchOption {
            scrutinee: _,
            binding: Some(id),
            ..
        } = stmt
            && hot_locals.contains(id)
        {
            sharing.needs_lock.get_or_insert(stmt_span(stmt));
        }
    });
    // A map read before being written in source order is caught above; one written first
    // and read later is a read-modify-write as well.
    if sharing.map_read_and_written.is_none() {
        walk_block(&handler.body, &mut |stmt| {
            if let Stmt::MapSet { map, span, .. } | Stmt::MapDelete { map, span, .. } = stmt
                && maps_read.contains(map)
            {
                sharing.map_read_and_written.get_or_insert((*map, *span));
            }
        });
    }
    sharing
}

/// Where a statement is, for diagnostics about it.
pub fn stmt_span(stmt: &Stmt) -> Span {
    match stmt {
        Stmt::Assign { span, .. }
        | Stmt::Unpack { span, .. }
        | Stmt::MapSet { span, .. }
        | Stmt::MapDelete { span, .. }
        | Stmt::VecAppend { span, .. }
        | Stmt::Send { span, .. }
        | Stmt::Opaque { span, .. } => *span,
        Stmt::Eval { value } => value.span,
        Stmt::If { cond, .. } => cond.span,
        Stmt::Switch { scrutinee, .. } | Stmt::MatchOption { scrutinee, .. } => scrutinee.span,
    }
}

/// `x = x + e` (or `e + x`) on an integer state variable, with `e` not reading written
/// state: one atomic add keeps it exact under concurrency.
fn atomic_add(
    program: &Program,
    stmt: &Stmt,
    written: &BTreeSet<StateId>,
    reads_hot: &dyn Fn(&Expr) -> Option<Span>,
) -> Option<Span> {
    let Stmt::Assign {
        place: Place::State(target),
        value,
        span,
    } = stmt
    else {
        return None;
    };
    if !written.contains(target) || !program.state_var(*target).ty.is_integer() {
        return None;
    }
    let ExprKind::Arith {
        op: ArithOp::Add,
        lhs,
        rhs,
    } = &value.kind
    else {
        return None;
    };
    let is_target = |e: &Expr| matches!(e.kind, ExprKind::State(id) if id == *target);
    let addend = if is_target(lhs) {
        rhs
    } else if is_target(rhs) {
        lhs
    } else {
        return None;
    };
    reads_hot(addend).is_none().then_some(*span)
}

/// The most draws any single run of the block can take.
pub fn max_draws(block: &Block) -> usize {
    fn expr_draws(expr: &Expr) -> usize {
        let mut count = 0;
        walk_expr(expr, &mut |e| {
            if matches!(e.kind, ExprKind::Randomf { .. }) {
                count += 1;
            }
        });
        count
    }
    fn block_draws(block: &Block) -> usize {
        let mut total = 0;
        for stmt in block {
            total += stmt_exprs(stmt).into_iter().map(expr_draws).sum::<usize>();
            total += match stmt {
                Stmt::If {
                    then_block,
                    else_block,
                    ..
                } => block_draws(then_block).max(block_draws(else_block)),
                Stmt::Switch { cases, default, .. } => cases
                    .iter()
                    .map(|(_, b)| block_draws(b))
                    .chain(default.iter().map(block_draws))
                    .max()
                    .unwrap_or(0),
                Stmt::MatchOption {
                    some_block,
                    none_block,
                    ..
                } => block_draws(some_block).max(block_draws(none_block)),
                _ => 0,
            };
        }
        total
    }
    block_draws(block)
}

/// Whether a type is one the XDP target can hold in a C variable or a map.
pub fn is_runtime_type(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Int | Type::Uint | Type::Bool | Type::Instant | Type::Float
    )
}
