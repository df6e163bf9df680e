//! Merging states that reach the same instruction: one state whose values are `ite`s over
//! the merged states' path conditions (which exclude each other: they are different paths).
//! States that cannot be merged soundly stay apart: a register that is a pointer on one path
//! and a number on the other, different lock sections, a different number of draws or clock
//! reads or records.

use std::collections::BTreeMap;

use z3::ast::{Array, BV, Bool};

use super::{Access, AccessKind, Event, MapState, Region, Section, Slot, State, Val};

/// Merges what it can of the states at one instruction; the rest stay as they are.
pub(crate) fn merge_all(states: Vec<State>) -> Vec<State> {
    let mut merged: Vec<State> = Vec::with_capacity(1);
    for state in states {
        let mut state = Some(state);
        for into in &mut merged {
            let candidate = state.take().expect("not yet placed");
            match merge(into, candidate) {
                None => break,
                Some(back) => state = Some(back),
            }
        }
        if let Some(state) = state {
            merged.push(state);
        }
    }
    merged
}

/// Merges `other` into `into`; gives `other` back when the two cannot be merged.
fn merge(into: &mut State, other: State) -> Option<State> {
    if !compatible(into, &other) {
        return Some(other);
    }
    let a = Bool::and(&into.cond);
    let b = Bool::and(&other.cond);
    let choose = |x: &BV, y: &BV| if x == y { x.clone() } else { a.ite(x, y) };

    let regs = into
        .regs
        .iter()
        .zip(&other.regs)
        .map(|(x, y)| merge_val(&a, x.as_ref()?, y.as_ref()?))
        .collect();
    let mut stack = BTreeMap::new();
    for (offset, x) in &into.stack {
        if let Some(y) = other.stack.get(offset)
            && let Some(slot) = merge_slot(&a, x, y)
        {
            stack.insert(*offset, slot);
        }
    }
    let sections = into
        .sections
        .iter()
        .map(|(name, section)| {
            (
                name.clone(),
                merge_section(&a, section, &other.sections[name]),
            )
        })
        .collect();
    let maps = into
        .maps
        .iter()
        .map(|(name, map)| {
            let theirs = &other.maps[name];
            let pick = |x: &Array, y: &Array| if x == y { x.clone() } else { a.ite(x, y) };
            let merged = MapState {
                present: pick(&map.present, &theirs.present),
                values: pick(&map.values, &theirs.values),
                key_bits: map.key_bits,
                value_bits: map.value_bits,
            };
            (name.clone(), merged)
        })
        .collect();
    let records = into
        .records
        .iter()
        .zip(&other.records)
        .map(|((map, x), (_, y))| (map.clone(), choose(x, y)))
        .collect();
    let mut map_keys = into.map_keys.clone();
    for key in &other.map_keys {
        if !map_keys.contains(key) {
            map_keys.push(key.clone());
        }
    }
    let times = into
        .times
        .iter()
        .zip(&other.times)
        .map(|(x, y)| choose(x, y))
        .collect();
    let mut visits = into.visits.clone();
    for (pc, count) in &other.visits {
        let entry = visits.entry(*pc).or_insert(0);
        *entry = (*entry).max(*count);
    }

    into.regs = regs;
    into.stack = stack;
    into.sections = sections;
    into.maps = maps;
    into.packet = if into.packet == other.packet {
        into.packet.clone()
    } else {
        a.ite(&into.packet, &other.packet)
    };
    into.records = records;
    into.map_keys = map_keys;
    into.times = times;
    into.events = merge_events(&a, &b, &into.events, &other.events);
    into.visits = visits;
    into.steps = into.steps.max(other.steps);
    into.accesses = merge_loads(&into.accesses, &other.accesses);
    into.cond = vec![Bool::or(&[a, b])];
    None
}

/// Whether the two states can become one.
fn compatible(x: &State, y: &State) -> bool {
    let regs = x.regs.iter().zip(&y.regs).all(|(p, q)| match (p, q) {
        (Some(Val::Scalar(_)), Some(Val::Scalar(_))) => true,
        (Some(Val::Ptr { region: r, .. }), Some(Val::Ptr { region: s, .. })) => same_region(r, s),
        (Some(Val::Map(m)), Some(Val::Map(n))) => m == n,
        // A register one path never set is dead after the join (the verifier refuses a read
        // of it), so it merges into "unset".
        (None, _) | (_, None) => true,
        _ => false,
    });
    regs && x.draws_used == y.draws_used
        && x.times.len() == y.times.len()
        && x.records.len() == y.records.len()
        && x.records
            .iter()
            .zip(&y.records)
            .all(|((m, _), (n, _))| m == n)
        && x.lock == y.lock
        && x.locks_taken == y.locks_taken
}

fn same_region(r: &Region, s: &Region) -> bool {
    match (r, s) {
        (Region::Stack, Region::Stack)
        | (Region::Packet, Region::Packet)
        | (Region::Ctx, Region::Ctx) => true,
        (Region::Section(x), Region::Section(y)) => x == y,
        (Region::MapValue { map: m, key: k }, Region::MapValue { map: n, key: l }) => {
            m == n && k == l
        }
        _ => false,
    }
}

fn merge_val(a: &Bool, x: &Val, y: &Val) -> Option<Val> {
    Some(match (x, y) {
        (Val::Scalar(p), Val::Scalar(q)) => {
            Val::Scalar(if p == q { p.clone() } else { a.ite(p, q) })
        }
        (Val::Ptr { region, off: p }, Val::Ptr { off: q, .. }) => Val::Ptr {
            region: region.clone(),
            off: if p == q { p.clone() } else { a.ite(p, q) },
        },
        (Val::Map(m), Val::Map(_)) => Val::Map(m.clone()),
        _ => return None,
    })
}

fn merge_slot(a: &Bool, x: &Slot, y: &Slot) -> Option<Slot> {
    match (x, y) {
        // Bytes of values of one width at the same place in them stay bytes of one value,
        // so that a value spilled on both paths is read back whole after the join.
        (Slot::Data { whole: p, byte: i }, Slot::Data { whole: q, byte: j })
            if i == j && p.get_size() == q.get_size() =>
        {
            let whole = if p == q { p.clone() } else { a.ite(p, q) };
            Some(Slot::Data { whole, byte: *i })
        }
        (Slot::Data { whole: p, byte: i }, Slot::Data { whole: q, byte: j }) => {
            let (p, q) = (p.extract(i * 8 + 7, i * 8), q.extract(j * 8 + 7, j * 8));
            let whole = if p == q { p } else { a.ite(&p, &q) };
            Some(Slot::Data { whole, byte: 0 })
        }
        (Slot::Ptr { val: p, byte: i }, Slot::Ptr { val: q, byte: j }) if i == j => match (p, q) {
            (Val::Ptr { region: r, .. }, Val::Ptr { region: s, .. }) if !same_region(r, s) => None,
            _ => Some(Slot::Ptr {
                val: merge_val(a, p, q)?,
                byte: *i,
            }),
        },
        // A slot that is data on one path and a pointer on the other is unusable after the
        // join: the verifier refuses reading it.
        _ => None,
    }
}

fn merge_section(a: &Bool, x: &Section, y: &Section) -> Section {
    let mut merged = Section::new(&x.name, x.fixed.clone(), x.fields.clone());
    let mut covered: Vec<u64> = Vec::new();
    for section in [x, y] {
        for (offset, value) in &section.cells {
            covered.extend(*offset..offset + u64::from(value.get_size() / 8));
        }
    }
    covered.sort_unstable();
    covered.dedup();
    let mut done = std::collections::BTreeSet::new();
    // Cells both wrote at the same place and width stay whole, and so does a cell one path
    // wrote where the other wrote nothing: a counter one path added to is then one `ite` of
    // the sum and the stored value, not eight of their bytes.
    for (mine, theirs, mine_first) in [(x, y, true), (y, x, false)] {
        for (offset, value) in &mine.cells {
            let size = value.get_size() / 8;
            let end = offset + u64::from(size);
            if done.contains(offset) {
                continue;
            }
            let other = match theirs.cells.get(offset) {
                Some(cell) if cell.get_size() == value.get_size() => cell.clone(),
                _ if theirs
                    .cells
                    .range(..end)
                    .next_back()
                    .is_none_or(|(start, cell)| {
                        start + u64::from(cell.get_size() / 8) <= *offset
                    }) =>
                {
                    theirs.read(*offset, size)
                }
                _ => continue,
            };
            let (p, q) = if mine_first {
                (value, &other)
            } else {
                (&other, value)
            };
            let cell = if p == q { p.clone() } else { a.ite(p, q) };
            merged.cells.insert(*offset, cell);
            done.extend(*offset..end);
        }
    }
    for offset in covered {
        if done.contains(&offset) {
            continue;
        }
        let (p, q) = (x.byte(offset), y.byte(offset));
        let byte = if p == q { p } else { a.ite(&p, &q) };
        merged.cells.insert(offset, byte);
    }
    merged
}

/// The events of two merged paths: what they share (made before they parted), then what
/// each made on its own, under its own condition.
fn merge_events(a: &Bool, b: &Bool, x: &[Event], y: &[Event]) -> Vec<Event> {
    let shared = x
        .iter()
        .zip(y)
        .take_while(|(p, q)| p.pc == q.pc && p.helper == q.helper && p.guard == q.guard)
        .count();
    let mut merged = x[..shared].to_vec();
    for (events, condition) in [(&x[shared..], a), (&y[shared..], b)] {
        merged.extend(events.iter().map(|event| Event {
            guard: Bool::and(&[event.guard.clone(), condition.clone()]),
            pc: event.pc,
            helper: event.helper,
        }));
    }
    merged
}

/// After a join only the loads matter to the race check: a store before it was checked on
/// its own path, and a store after it follows every load either path made.
fn merge_loads(x: &[Access], y: &[Access]) -> Vec<Access> {
    let mut loads: Vec<Access> = Vec::new();
    for access in x.iter().chain(y) {
        if access.kind == AccessKind::Load && !loads.contains(access) {
            loads.push(access.clone());
        }
    }
    loads
}
