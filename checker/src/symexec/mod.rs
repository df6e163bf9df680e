//! Symbolic execution of BPF bytecode into Z3 bit-vectors (K2's encoding choices): memory is
//! split by region (stack, packet, ctx, each global-data section, each map's values) and
//! addressed by offsets, never raw addresses; a map lookup forks into hit and NULL over an
//! unconstrained initial map; every helper the model lacks, and every instruction it does not
//! decode, ends the run with `Unknown` naming it.
//!
//! States fork at conditional jumps and are merged again where their paths meet: the work
//! list is ordered by instruction index, so every state that reaches a join point is there
//! before any of them goes on, and compatible ones become one state whose values are `ite`s
//! over their conditions (`merge.rs`). The number of states then grows with the program's
//! size, not with the number of its paths (n token buckets are n sequential choices, not
//! 6ⁿ paths). Each state ends in an `exit` with its condition and final state.

mod memory;
mod merge;
mod step;

use std::collections::BTreeMap;

use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::object_model::flow::{Flow, Regs, reg as register};
use simplebpf_compiler::object_model::insn::{JmpOp, Opcode};
use simplebpf_compiler::object_model::{BpfObject, Helper, Insn, MapKind};
use z3::ast::{Array, Ast, BV, Bool};
use z3::{SatResult, Solver, Sort};

pub use memory::Section;

/// Why the bytecode is outside the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub pc: usize,
    pub reason: String,
}

/// Where a pointer points.
#[derive(Debug, Clone)]
pub enum Region {
    Stack,
    Packet,
    Ctx,
    /// A global-data section (`.bss`, `.data`, `.rodata`, ...).
    Section(String),
    /// The value stored under `key` in a map.
    MapValue {
        map: String,
        key: BV,
    },
}

#[derive(Debug, Clone)]
pub enum Val {
    Scalar(BV),
    Ptr {
        region: Region,
        off: BV,
    },
    /// The address of a map itself (`lddw` with `src_reg` 1), only passed to helpers.
    Map(String),
}

/// A hash or array map: which keys are present and what they hold.
#[derive(Debug, Clone)]
pub struct MapState {
    pub present: Array,
    pub values: Array,
    pub key_bits: u32,
    pub value_bits: u32,
}

/// The inputs both sides share.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub packet: Array,
    pub packet_len: BV,
    pub draws: Array,
    pub now: BV,
    /// Initial contents of each global-data section.
    pub sections: BTreeMap<String, Section>,
    pub maps: BTreeMap<String, MapState>,
}

/// Where a memory access went, for the race check: a global-data section and offset, or a
/// map's value (by map; the key is symbolic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Global {
        section: String,
        offset: u64,
        size: u32,
    },
    MapValue {
        map: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Load,
    Store,
    /// One atomic instruction: a read-modify-write no other CPU can split.
    Atomic,
}

/// One memory access on a path: the instruction, what it did where, and which
/// `bpf_spin_lock` section it ran in (`None` outside any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub pc: usize,
    pub kind: AccessKind,
    pub location: Location,
    pub lock_section: Option<usize>,
}

/// A helper call that matters for a replay (a draw, a clock read), and when it happens: on
/// the paths where `guard` holds (merged states carry the calls of each of their paths).
#[derive(Debug, Clone)]
pub struct Event {
    pub guard: Bool,
    pub pc: usize,
    pub helper: Helper,
}

/// A stack byte: byte `byte` of a value stored whole, or of a pointer spilled to the stack
/// (clang spills pointers, and numbers, when registers run short).
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Data { whole: BV, byte: u32 },
    Ptr { val: Val, byte: u8 },
}

/// Everything that reaches an `exit`, and the first race found on the way.
#[derive(Debug, Clone)]
pub struct Execution {
    pub paths: Vec<PathEnd>,
    /// `(instruction, variable)` of a store to a state variable read before it on the same
    /// path, neither atomically nor in one lock section.
    pub race: Option<(usize, String)>,
}

/// One run (or several merged runs) from entry to `exit`.
#[derive(Debug, Clone)]
pub struct PathEnd {
    pub cond: Bool,
    pub action: BV,
    pub sections: BTreeMap<String, Section>,
    pub maps: BTreeMap<String, MapState>,
    pub packet: Array,
    /// `(ring buffer, record bytes)` in emission order.
    pub records: Vec<(String, BV)>,
    /// `(map, key)` of every map lookup, update and delete, in order: the keys a
    /// counterexample's map state is shown (and replayed) at.
    pub map_keys: Vec<(String, BV)>,
    pub draws_used: usize,
    /// Time values after the first (each no smaller than the one before).
    pub later_times: Vec<BV>,
    /// The draws and clock reads made, in order, each with the condition it happens under.
    pub events: Vec<Event>,
}

/// The frame pointer's offset: the stack region spans [0, 512).
const STACK_SIZE: u64 = 512;
const MAX_STEPS: usize = 100_000;
/// States alive at once; past it the verdict is "unknown".
const MAX_STATES: usize = 4096;
/// How often one instruction may run on one path: loops are unrolled this far, beyond it
/// the verdict is "unknown". (The verifier's own bound on verified loops is larger; no
/// program of this project loops at all.)
const LOOP_BOUND: u32 = 64;

fn bv(value: u64, bits: u32) -> BV {
    BV::from_u64(value, bits)
}

fn byte_sort() -> Sort {
    Sort::bitvector(8)
}

fn addr_sort() -> Sort {
    Sort::bitvector(64)
}

/// Inputs as fresh symbols, with read-only sections (`.rodata`) at their contents in the
/// object, since no one can write them after load.
/// `fields`: `(section, offset, size)` of each state variable's global.
pub fn fresh_inputs(object: &BpfObject, fields: &[(&str, u64, u32)]) -> Inputs {
    let mut sections = BTreeMap::new();
    let mut maps = BTreeMap::new();
    for map in &object.maps {
        match map.kind {
            MapKind::GlobalData => {
                let fixed = map.name.starts_with(".rodata").then(|| map.initial.clone());
                let own = fields
                    .iter()
                    .filter(|(section, _, _)| *section == map.name)
                    .map(|(_, offset, size)| (*offset, *size))
                    .collect();
                sections.insert(map.name.clone(), Section::new(&map.name, fixed, own));
            }
            MapKind::Hash | MapKind::Array => {
                let key_bits = map.key_size * 8;
                let value_bits = map.value_size * 8;
                let present = if map.kind == MapKind::Array {
                    // Every index below max_entries exists in an array map.
                    Array::const_array(&Sort::bitvector(key_bits), &Bool::from_bool(true))
                } else {
                    Array::new_const(
                        format!("pre_{}_present", map.name),
                        &Sort::bitvector(key_bits),
                        &Sort::bool(),
                    )
                };
                let values = Array::new_const(
                    format!("pre_{}_values", map.name),
                    &Sort::bitvector(key_bits),
                    &Sort::bitvector(value_bits),
                );
                maps.insert(
                    map.name.clone(),
                    MapState {
                        present,
                        values,
                        key_bits,
                        value_bits,
                    },
                );
            }
            _ => {}
        }
    }
    Inputs {
        packet: Array::new_const("packet", &addr_sort(), &byte_sort()),
        packet_len: BV::new_const("packet_len", 64),
        draws: Array::new_const("draws", &Sort::bitvector(8), &Sort::bitvector(32)),
        now: BV::new_const("now", 64),
        sections,
        maps,
    }
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pc: usize,
    regs: Vec<Option<Val>>,
    stack: BTreeMap<u64, Slot>,
    sections: BTreeMap<String, Section>,
    maps: BTreeMap<String, MapState>,
    packet: Array,
    cond: Vec<Bool>,
    records: Vec<(String, BV)>,
    map_keys: Vec<(String, BV)>,
    draws_used: usize,
    times: Vec<BV>,
    events: Vec<Event>,
    /// How often each instruction has run (the most over merged paths): the loop bound, and
    /// the names of values made at an instruction (the same on every path through it).
    visits: BTreeMap<usize, u32>,
    steps: usize,
    packet_len: BV,
    accesses: Vec<Access>,
    /// The current lock section's number, and how many have been entered.
    lock: Option<usize>,
    locks_taken: usize,
}

/// A call the model lacks, found without running anything: such a program is "unknown"
/// before any test or query runs.
pub fn unmodelled_call(insns: &[Insn]) -> Option<Unknown> {
    const MODELLED: &[Helper] = &[
        Helper::MAP_LOOKUP_ELEM,
        Helper::MAP_UPDATE_ELEM,
        Helper::MAP_DELETE_ELEM,
        Helper::KTIME_GET_NS,
        Helper::GET_PRANDOM_U32,
        Helper::SPIN_LOCK,
        Helper::SPIN_UNLOCK,
        Helper::RINGBUF_OUTPUT,
    ];
    insns.iter().enumerate().find_map(|(pc, insn)| {
        let Opcode::Jmp {
            op: JmpOp::Call, ..
        } = insn.opcode
        else {
            return None;
        };
        let reason = match insn.helper() {
            None => "calls to BPF subprograms or kfuncs are not modelled".to_string(),
            Some(helper) if !MODELLED.contains(&helper) => format!("{helper} is not modelled"),
            Some(_) => return None,
        };
        Some(Unknown { pc, reason })
    })
}

/// Runs the program from its entry to every `exit`; `Err` when some instruction or helper is
/// outside the model. `variable_of` names the state variable a location holds, for the
/// race check.
pub fn execute(
    insns: &[Insn],
    inputs: &Inputs,
    deadline: std::time::Instant,
    cancel: &Cancel,
    variable_of: &dyn Fn(&Location) -> Option<String>,
) -> Result<Execution, Unknown> {
    let mut regs = vec![None; 11];
    regs[1] = Some(Val::Ptr {
        region: Region::Ctx,
        off: bv(0, 64),
    });
    regs[10] = Some(Val::Ptr {
        region: Region::Stack,
        off: bv(STACK_SIZE, 64),
    });
    let start = State {
        pc: 0,
        regs,
        stack: BTreeMap::new(),
        sections: inputs.sections.clone(),
        maps: inputs.maps.clone(),
        packet: inputs.packet.clone(),
        cond: Vec::new(),
        records: Vec::new(),
        map_keys: Vec::new(),
        draws_used: 0,
        times: Vec::new(),
        events: Vec::new(),
        visits: BTreeMap::new(),
        steps: 0,
        packet_len: inputs.packet_len.clone(),
        accesses: Vec::new(),
        lock: None,
        locks_taken: 0,
    };
    let pruner = Solver::new();
    // Pruning is an optimisation: a check past its budget keeps both sides. A resource
    // budget, not a time limit, so that the same program explores the same paths on a busy
    // machine.
    let mut params = crate::interrupt::without_ctrl_c();
    params.set_u32("rlimit", PRUNE_BUDGET);
    pruner.set_params(&params);

    let mut pending: BTreeMap<usize, Vec<State>> = BTreeMap::new();
    pending.entry(0).or_default().push(start);
    let mut ends = Vec::new();
    let mut alive = 1;
    // Where the flow analysis does not model the program, every register still counts.
    let flow = Flow::of(insns).ok();
    while let Some((at, mut arrived)) = pending.pop_first() {
        alive -= arrived.len();
        let live = flow
            .as_ref()
            .filter(|_| at < insns.len())
            .map(|flow| flow.live_in(at));
        if let Some(live) = live
            && arrived.len() > 1
            && computes(live)
        {
            forget_dead(&mut arrived, live);
        }
        for state in &arrived {
            if let Some(race) = race(&state.accesses, variable_of) {
                return Ok(Execution {
                    paths: ends,
                    race: Some(race),
                });
            }
        }
        for mut state in merge::merge_all(arrived) {
            let pc = state.pc;
            if cancel.is_cancelled() {
                return Err(unknown(&state, "interrupted"));
            }
            if std::time::Instant::now() > deadline {
                return Err(unknown(
                    &state,
                    "symbolic execution did not finish within the timeout",
                ));
            }
            let prune = alive > PRUNE_AFTER;
            match advance(&mut state, insns, inputs, prune, &pruner) {
                Ok(Advance::Ended) => ends.push(end(state)),
                Ok(Advance::Continue(next)) => {
                    for next in next {
                        alive += 1;
                        pending.entry(next.pc).or_default().push(next);
                    }
                }
                Err(unknown) => {
                    // What goes wrong on a path that cannot run is no reason for "unknown".
                    let stopped = std::time::Instant::now() > deadline || cancel.is_cancelled();
                    if stopped || !matches!(feasible(&pruner, &state.cond), Feasible::No) {
                        return Err(unknown);
                    }
                }
            }
            if alive + ends.len() > MAX_STATES {
                return Err(Unknown {
                    pc,
                    reason: format!("more than {MAX_STATES} states"),
                });
            }
        }
    }
    Ok(Execution {
        paths: ends,
        race: None,
    })
}

/// States are not checked for feasibility at forks while this few are alive: measured
/// here, the programs of this project have (almost) no infeasible forks, and a solver call
/// per fork cost more than the whole equivalence query. An infeasible state is harmless in
/// the query (its condition is false); pruning is there to keep loops from multiplying them.
const PRUNE_AFTER: usize = 64;

/// Z3 resource units one pruning check may use (a few hundred ms here).
const PRUNE_BUDGET: u32 = 2_000_000;

enum Advance {
    Ended,
    /// The states after this instruction (two at a fork, none if both sides are infeasible).
    Continue(Vec<State>),
}

/// Runs one instruction of `state`.
fn advance(
    state: &mut State,
    insns: &[Insn],
    inputs: &Inputs,
    prune: bool,
    pruner: &Solver,
) -> Result<Advance, Unknown> {
    if state.steps > MAX_STEPS {
        return Err(unknown(
            state,
            format!(
                "a path runs more than {MAX_STEPS} instructions (a loop beyond the model's bound)"
            ),
        ));
    }
    let visits = state.visits.entry(state.pc).or_insert(0);
    if *visits >= LOOP_BOUND {
        return Err(unknown(
            state,
            format!(
                "a loop runs more than {LOOP_BOUND} times on one path (the model unrolls loops that far)"
            ),
        ));
    }
    *visits += 1;
    let Some(insn) = insns.get(state.pc) else {
        return Err(unknown(state, "execution runs past the last instruction"));
    };
    state.steps += 1;
    let (taken, other) = match step::step(state, insn, insns, inputs)? {
        step::Step::Next => return Ok(Advance::Continue(vec![state.clone()])),
        step::Step::Exit => {
            let Some(Val::Scalar(_)) = &state.regs[0] else {
                return Err(unknown(
                    state,
                    "the program returns something other than a number",
                ));
            };
            return Ok(Advance::Ended);
        }
        step::Step::Lookup { present, hit } => {
            state.pc += 1;
            match present.as_bool() {
                Some(true) => {
                    set(state, 0, hit);
                    return Ok(Advance::Continue(vec![state.clone()]));
                }
                Some(false) => {
                    set(state, 0, Val::Scalar(bv(0, 64)));
                    return Ok(Advance::Continue(vec![state.clone()]));
                }
                None => {
                    let mut absent = state.clone();
                    absent.cond.push(present.not());
                    set(&mut absent, 0, Val::Scalar(bv(0, 64)));
                    let mut hit_state = state.clone();
                    hit_state.cond.push(present);
                    set(&mut hit_state, 0, hit);
                    (hit_state, absent)
                }
            }
        }
        step::Step::Fork { cond, target } => {
            let simplified = cond.simplify();
            match simplified.as_bool() {
                Some(true) => {
                    state.pc = target;
                    return Ok(Advance::Continue(vec![state.clone()]));
                }
                Some(false) => {
                    state.pc += 1;
                    return Ok(Advance::Continue(vec![state.clone()]));
                }
                None => {
                    let mut other = state.clone();
                    other.cond.push(simplified.not());
                    other.pc += 1;
                    let mut taken = state.clone();
                    taken.cond.push(simplified);
                    taken.pc = target;
                    (taken, other)
                }
            }
        }
    };
    let next = [taken, other]
        .into_iter()
        .filter(|s| !prune || !matches!(feasible(pruner, &s.cond), Feasible::No))
        .collect();
    Ok(Advance::Continue(next))
}

/// What a state that reached `exit` leaves.
fn end(state: State) -> PathEnd {
    let Some(Val::Scalar(action)) = state.regs[0].clone() else {
        unreachable!("checked before the state ended");
    };
    PathEnd {
        cond: Bool::and(&state.cond),
        action,
        sections: state.sections,
        maps: state.maps,
        packet: state.packet,
        records: state.records,
        map_keys: state.map_keys,
        draws_used: state.draws_used,
        later_times: state.times.iter().skip(1).cloned().collect(),
        events: state.events,
    }
}

/// A store to a state variable that an earlier load of it on the same path read, without
/// a lock section around both: a lost update waiting to happen. Atomic instructions are
/// fine.
fn race(
    accesses: &[Access],
    variable_of: &dyn Fn(&Location) -> Option<String>,
) -> Option<(usize, String)> {
    for (index, store) in accesses.iter().enumerate() {
        if store.kind != AccessKind::Store {
            continue;
        }
        let Some(variable) = variable_of(&store.location) else {
            continue;
        };
        let unprotected_read = accesses[..index].iter().any(|load| {
            load.kind == AccessKind::Load
                && variable_of(&load.location).as_ref() == Some(&variable)
                && !(load.lock_section.is_some() && load.lock_section == store.lock_section)
        });
        if unprotected_read {
            return Some((store.pc, variable));
        }
    }
    None
}

enum Feasible {
    No,
    /// Satisfiable, or unknown (kept).
    Yes,
}

fn feasible(solver: &Solver, cond: &[Bool]) -> Feasible {
    solver.push();
    for c in cond {
        solver.assert(c);
    }
    let result = match solver.check() {
        SatResult::Unsat => Feasible::No,
        SatResult::Sat | SatResult::Unknown => Feasible::Yes,
    };
    solver.pop(1);
    result
}

pub(crate) fn unknown(state: &State, reason: impl Into<String>) -> Unknown {
    Unknown {
        pc: state.pc,
        reason: reason.into(),
    }
}

/// Whether states with these registers live still compute something before they end: a
/// register besides r0 and the frame pointer is read. Where only the return value is left
/// (`r0 = XDP_PASS; exit`), merging saves no work and costs the query its separate paths
/// (measured: 64 counters took 18 s merged there, 0.15 s apart).
fn computes(live: Regs) -> bool {
    live & !(register(0) | register(10)) != 0
}

/// Registers no later instruction reads cannot keep states apart (clang often leaves a
/// pointer in one branch's register and a number in the other's): they become unset. Were
/// one read after all, the executor would refuse the read ("unknown"), never use a wrong
/// value. Without this such states met only at a later join, where every merged value chose
/// by the whole of both paths' conditions (eight token buckets: 3 paths and 8–11 s, now 2
/// paths and 3.5–5 s).
fn forget_dead(states: &mut [State], live: Regs) {
    for state in states {
        for (r, value) in (0u8..).zip(state.regs.iter_mut()) {
            if live & register(r) == 0 {
                *value = None;
            }
        }
    }
}

pub(crate) fn reg(state: &State, r: u8) -> Result<Val, Unknown> {
    state
        .regs
        .get(r as usize)
        .cloned()
        .flatten()
        .ok_or_else(|| unknown(state, format!("r{r} is read before it is written")))
}

pub(crate) fn scalar(state: &State, r: u8) -> Result<BV, Unknown> {
    match reg(state, r)? {
        Val::Scalar(v) => Ok(v),
        _ => Err(unknown(
            state,
            format!("r{r} holds a pointer where a number is expected"),
        )),
    }
}

pub(crate) fn set(state: &mut State, r: u8, value: Val) {
    state.regs[r as usize] = Some(value);
}
