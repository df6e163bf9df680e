//! Symbolic execution of BPF bytecode into Z3 bit-vectors (K2's encoding choices): memory is
//! split by region (stack, packet, ctx, each global-data section, each map's values) and
//! addressed by offsets, never raw addresses; a map lookup forks into hit and NULL over an
//! unconstrained initial map; every helper the model lacks, and every instruction it does not
//! decode, ends the run with `Unknown` naming it. Paths fork at conditional jumps; each path
//! ends in an `exit` with its condition and final state.

use std::collections::BTreeMap;
use std::rc::Rc;

use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::object_model::insn::{AluOp, AtomicOp, JmpOp, Opcode, Size, Source};
use simplebpf_compiler::object_model::{BpfObject, Helper, Insn, MapKind, Target};
use z3::ast::{Array, Ast, BV, Bool};
use z3::{Model, SatResult, Solver, Sort};

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

/// A global-data section. Offsets are constants (a symbolic one is "unknown"), so no array
/// theory is needed. The pre-state is one constant per field that a state variable occupies
/// (`fields`), and one 8-bit constant per other byte; writes are kept as the values written
/// (`cells`), so that a read of exactly what was written, or of exactly a variable's field,
/// is that one term — the program's and the policy's terms for a variable are then the same
/// term, not a concatenation of bytes the solver must put back together.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// The contents of a read-only section (`.rodata`): fixed, not inputs.
    pub fixed: Option<Vec<u8>>,
    /// `offset → size` of the fields whose pre-state is one constant.
    pub fields: BTreeMap<u64, u32>,
    /// `offset → value` of what this path wrote; cells do not overlap.
    pub cells: BTreeMap<u64, BV>,
}

impl Section {
    pub fn new(name: &str, fixed: Option<Vec<u8>>, fields: BTreeMap<u64, u32>) -> Section {
        Section {
            name: name.to_string(),
            fixed,
            fields,
            cells: BTreeMap::new(),
        }
    }

    /// The pre-state constant of the field at `offset` of `size` bytes.
    fn field(&self, offset: u64, size: u32) -> BV {
        BV::new_const(format!("pre{}@{offset}:{size}", self.name), size * 8)
    }

    /// The cell holding byte `offset`, as (its offset, its value).
    fn cell_at(&self, offset: u64) -> Option<(u64, &BV)> {
        let (start, value) = self.cells.range(..=offset).next_back()?;
        (offset < start + u64::from(value.get_size() / 8)).then_some((*start, value))
    }

    fn field_at(&self, offset: u64) -> Option<(u64, u32)> {
        let (start, size) = self.fields.range(..=offset).next_back()?;
        (offset < start + u64::from(*size)).then_some((*start, *size))
    }

    pub fn byte(&self, offset: u64) -> BV {
        if let Some((start, value)) = self.cell_at(offset) {
            let bit = ((offset - start) * 8) as u32;
            return value.extract(bit + 7, bit);
        }
        if let Some(bytes) = &self.fixed {
            return bv(
                u64::from(bytes.get(offset as usize).copied().unwrap_or(0)),
                8,
            );
        }
        if let Some((start, size)) = self.field_at(offset) {
            let bit = ((offset - start) * 8) as u32;
            return self.field(start, size).extract(bit + 7, bit);
        }
        BV::new_const(format!("pre{}@{offset}", self.name), 8)
    }

    /// `size` bytes at `offset`, little endian.
    pub fn read(&self, offset: u64, size: u32) -> BV {
        if let Some(value) = self.cells.get(&offset)
            && value.get_size() == size * 8
        {
            return value.clone();
        }
        let end = offset + u64::from(size);
        let untouched = self
            .cells
            .range(..end)
            .next_back()
            .is_none_or(|(start, value)| start + u64::from(value.get_size() / 8) <= offset);
        if untouched && self.fixed.is_none() && self.fields.get(&offset) == Some(&size) {
            return self.field(offset, size);
        }
        (0..u64::from(size))
            .map(|i| self.byte(offset + i))
            .rev()
            .reduce(|acc, b| acc.concat(&b))
            .expect("at least one byte")
    }

    /// Stores `value` (a whole number of bytes) at `offset`; cells it overlaps keep only
    /// their bytes outside it.
    pub fn write(&mut self, offset: u64, value: BV) {
        let end = offset + u64::from(value.get_size() / 8);
        let overlapping: Vec<u64> = self
            .cells
            .range(..end)
            .filter(|(start, cell)| *start + u64::from(cell.get_size() / 8) > offset)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            let cell = self.cells.remove(&start).expect("listed");
            for i in 0..u64::from(cell.get_size() / 8) {
                let at = start + i;
                if at < offset || at >= end {
                    let bit = (i * 8) as u32;
                    self.cells.insert(at, cell.extract(bit + 7, bit));
                }
            }
        }
        self.cells.insert(offset, value);
    }
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

/// One run from entry to `exit`.
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
    /// Instruction indices this path executed, for replay and reports.
    pub trace: Vec<usize>,
    /// Accesses to global data and map values, in order.
    pub accesses: Vec<Access>,
}

/// The frame pointer's offset: the stack region spans [0, 512).
const STACK_SIZE: u64 = 512;
const MAX_STEPS: usize = 100_000;
const MAX_PATHS: usize = 4096;
/// How often one instruction may run on one path: loops are unrolled this far, beyond it
/// the verdict is "unknown". (The verifier's own bound on verified loops is larger; no
/// program of this project loops at all.)
const LOOP_BOUND: usize = 64;

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
struct State {
    pc: usize,
    regs: Vec<Option<Val>>,
    stack: BTreeMap<u64, BV>,
    sections: BTreeMap<String, Section>,
    maps: BTreeMap<String, MapState>,
    packet: Array,
    cond: Vec<Bool>,
    records: Vec<(String, BV)>,
    map_keys: Vec<(String, BV)>,
    draws_used: usize,
    times: Vec<BV>,
    trace: Vec<usize>,
    steps: usize,
    packet_len: BV,
    accesses: Vec<Access>,
    /// The current lock section's number, and how many have been entered.
    lock: Option<usize>,
    locks_taken: usize,
    /// An assignment satisfying `cond`, when one is known: a fork whose condition it decides
    /// needs a solver call for the other side only.
    witness: Option<Rc<Model>>,
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

/// Runs every path of the program; `Err` when some instruction or helper is outside the
/// model.
pub fn execute(
    insns: &[Insn],
    inputs: &Inputs,
    deadline: std::time::Instant,
    cancel: &Cancel,
) -> Result<Vec<PathEnd>, Unknown> {
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
        trace: Vec::new(),
        steps: 0,
        packet_len: inputs.packet_len.clone(),
        accesses: Vec::new(),
        lock: None,
        locks_taken: 0,
        witness: None,
    };
    let pruner = Solver::new();
    // Pruning is an optimisation: a check past its budget keeps both sides. A resource
    // budget, not a time limit, so that the same program explores the same paths on a busy
    // machine.
    let mut params = z3::Params::new();
    params.set_u32("rlimit", PRUNE_BUDGET);
    params.set_bool("ctrl_c", false);
    pruner.set_params(&params);
    let mut work = vec![start];
    let mut ends = Vec::new();
    while let Some(mut state) = work.pop() {
        let mut paths = Paths {
            work: &mut work,
            pruner: &pruner,
            prune: ends.len() >= PRUNE_AFTER,
        };
        match run(&mut state, insns, inputs, deadline, cancel, &mut paths) {
            Ok(Some(end)) => ends.push(end),
            Ok(None) => {}
            Err(unknown) => {
                // What goes wrong on a path that cannot run is no reason for "unknown".
                let timed_out = std::time::Instant::now() > deadline || cancel.is_cancelled();
                if timed_out || !matches!(feasible(&pruner, &state.cond), Feasible::No) {
                    return Err(unknown);
                }
            }
        }
        if work.len() + ends.len() > MAX_PATHS {
            return Err(Unknown {
                pc: state.pc,
                reason: format!("more than {MAX_PATHS} paths"),
            });
        }
    }
    Ok(ends)
}

/// Paths are not checked for feasibility at forks until this many have ended: measured
/// here, the programs of this project have (almost) no infeasible forks, and a solver call
/// per fork cost more than the whole equivalence query. An infeasible path is harmless in
/// the query (its condition is false); pruning is there to keep loops from multiplying them.
const PRUNE_AFTER: usize = 64;

/// Z3 resource units one pruning check may use (a few hundred ms here).
const PRUNE_BUDGET: u32 = 2_000_000;

/// The work list of pending paths and how forks treat it.
struct Paths<'a> {
    work: &'a mut Vec<State>,
    pruner: &'a Solver,
    /// Whether forks drop a side whose condition cannot hold.
    prune: bool,
}

/// Runs one path to its `exit` (`Some`), or until it proves infeasible (`None`); the other
/// sides of its forks join the work list.
fn run(
    state: &mut State,
    insns: &[Insn],
    inputs: &Inputs,
    deadline: std::time::Instant,
    cancel: &Cancel,
    paths: &mut Paths,
) -> Result<Option<PathEnd>, Unknown> {
    loop {
        if state.steps > MAX_STEPS {
            return Err(unknown(
                state,
                format!(
                    "a path runs more than {MAX_STEPS} instructions (a loop beyond the model's bound)"
                ),
            ));
        }
        if state.trace.iter().filter(|&&pc| pc == state.pc).count() >= LOOP_BOUND {
            return Err(unknown(
                state,
                format!(
                    "a loop runs more than {LOOP_BOUND} times on one path (the model unrolls loops that far)"
                ),
            ));
        }
        if cancel.is_cancelled() {
            return Err(unknown(state, "interrupted"));
        }
        if std::time::Instant::now() > deadline {
            return Err(unknown(
                state,
                "symbolic execution did not finish within the timeout",
            ));
        }
        let Some(insn) = insns.get(state.pc) else {
            return Err(unknown(state, "execution runs past the last instruction"));
        };
        state.trace.push(state.pc);
        state.steps += 1;
        match step(state, insn, insns, inputs)? {
            Step::Next => {}
            Step::Exit => {
                let Some(Val::Scalar(action)) = &state.regs[0] else {
                    return Err(unknown(
                        state,
                        "the program returns something other than a number",
                    ));
                };
                let later_times = state.times.iter().skip(1).cloned().collect();
                return Ok(Some(PathEnd {
                    cond: Bool::and(&state.cond),
                    action: action.clone(),
                    sections: state.sections.clone(),
                    maps: state.maps.clone(),
                    packet: state.packet.clone(),
                    records: state.records.clone(),
                    map_keys: state.map_keys.clone(),
                    draws_used: state.draws_used,
                    later_times,
                    trace: state.trace.clone(),
                    accesses: state.accesses.clone(),
                }));
            }
            Step::Lookup { present, hit } => {
                state.pc += 1;
                match present.as_bool() {
                    Some(true) => set(state, 0, hit),
                    Some(false) => set(state, 0, Val::Scalar(bv(0, 64))),
                    None => {
                        let mut absent = state.clone();
                        absent.cond.push(present.not());
                        set(&mut absent, 0, Val::Scalar(bv(0, 64)));
                        match decides(state.witness.as_deref(), &present) {
                            Some(true) => absent.witness = None,
                            Some(false) => state.witness = None,
                            None => (absent.witness, state.witness) = (None, None),
                        }
                        paths.work.push(absent);
                        state.cond.push(present);
                        set(state, 0, hit);
                    }
                }
            }
            Step::Fork { cond, target } => {
                let simplified = cond.simplify();
                match simplified.as_bool() {
                    Some(true) => state.pc = target,
                    Some(false) => state.pc += 1,
                    None => {
                        let mut other = state.clone();
                        other.cond.push(simplified.not());
                        other.pc += 1;
                        state.cond.push(simplified.clone());
                        state.pc = target;
                        if !paths.prune {
                            paths.work.push(other);
                            continue;
                        }
                        // Drop a side whose path condition cannot hold. The side the
                        // witness takes needs no solver call.
                        let decided = decides(state.witness.as_deref(), &simplified);
                        if decided == Some(false) {
                            paths.work.push(other);
                        } else if let Feasible::Yes(witness) = feasible(paths.pruner, &other.cond) {
                            other.witness = witness;
                            paths.work.push(other);
                        }
                        if decided != Some(true) {
                            match feasible(paths.pruner, &state.cond) {
                                Feasible::No => return Ok(None),
                                Feasible::Yes(witness) => state.witness = witness,
                            }
                        }
                    }
                }
            }
        }
    }
}

enum Feasible {
    No,
    /// Satisfiable, with the solver's assignment; or unknown (kept, with no witness).
    Yes(Option<Rc<Model>>),
}

fn feasible(solver: &Solver, cond: &[Bool]) -> Feasible {
    solver.push();
    for c in cond {
        solver.assert(c);
    }
    let result = match solver.check() {
        SatResult::Unsat => Feasible::No,
        SatResult::Sat => Feasible::Yes(solver.get_model().map(Rc::new)),
        SatResult::Unknown => Feasible::Yes(None),
    };
    solver.pop(1);
    result
}

/// The value of `cond` under a witness, if there is one and it decides.
fn decides(witness: Option<&Model>, cond: &Bool) -> Option<bool> {
    witness?.eval(cond, true)?.as_bool()
}

enum Step {
    Next,
    Exit,
    Fork {
        cond: Bool,
        target: usize,
    },
    /// A map lookup whose key may be absent: `r0` is `hit` where `present` holds, else NULL.
    Lookup {
        present: Bool,
        hit: Val,
    },
}

fn unknown(state: &State, reason: impl Into<String>) -> Unknown {
    Unknown {
        pc: state.pc,
        reason: reason.into(),
    }
}

fn reg(state: &State, r: u8) -> Result<Val, Unknown> {
    state
        .regs
        .get(r as usize)
        .cloned()
        .flatten()
        .ok_or_else(|| unknown(state, format!("r{r} is read before it is written")))
}

fn scalar(state: &State, r: u8) -> Result<BV, Unknown> {
    match reg(state, r)? {
        Val::Scalar(v) => Ok(v),
        _ => Err(unknown(
            state,
            format!("r{r} holds a pointer where a number is expected"),
        )),
    }
}

fn set(state: &mut State, r: u8, value: Val) {
    state.regs[r as usize] = Some(value);
}

fn step(state: &mut State, insn: &Insn, insns: &[Insn], inputs: &Inputs) -> Result<Step, Unknown> {
    match insn.opcode {
        Opcode::Alu {
            wide,
            op: AluOp::End,
            source,
        } => byte_swap(state, insn, wide, source).map(|_| next(state)),
        Opcode::Alu { wide, op, source } => alu(state, insn, wide, op, source).map(|_| next(state)),
        Opcode::Jmp { wide, op, source } => jump(state, insn, wide, op, source, insns, inputs),
        Opcode::Load { size, sign_extend } => {
            load(state, insn, size, sign_extend)?;
            Ok(next(state))
        }
        Opcode::Store { size, source } => {
            store(state, insn, size, source)?;
            Ok(next(state))
        }
        Opcode::Atomic { size } => {
            atomic(state, insn, size)?;
            Ok(next(state))
        }
        Opcode::LoadImm64 => {
            let value = match &insn.target {
                Some(Target::Map(name)) => Val::Map(name.clone()),
                Some(Target::Value { map, offset }) => Val::Ptr {
                    region: Region::Section(map.clone()),
                    off: bv(u64::from(*offset), 64),
                },
                None if insn.src == 0 => {
                    let wide = (u64::from(insn.imm_hi as u32) << 32) | u64::from(insn.imm as u32);
                    Val::Scalar(bv(wide, 64))
                }
                None => {
                    return Err(unknown(
                        state,
                        format!("lddw with src_reg {} is not modelled", insn.src),
                    ));
                }
            };
            set(state, insn.dst, value);
            Ok(next(state))
        }
        other => Err(unknown(state, format!("{other:?} is not modelled"))),
    }
}

fn next(state: &mut State) -> Step {
    state.pc += 1;
    Step::Next
}

fn alu(
    state: &mut State,
    insn: &Insn,
    wide: bool,
    op: AluOp,
    source: Source,
) -> Result<(), Unknown> {
    let bits = if wide { 64 } else { 32 };
    let src_val = if source == Source::Reg {
        Some(reg(state, insn.src)?)
    } else {
        None
    };
    // Pointer arithmetic: add/sub a number, move, or subtract two pointers of one region.
    if wide {
        let dst_val = state.regs[insn.dst as usize].clone();
        match (op, dst_val.as_ref(), src_val.as_ref()) {
            (AluOp::Mov, _, Some(ptr @ (Val::Ptr { .. } | Val::Map(_)))) => {
                set(state, insn.dst, ptr.clone());
                return Ok(());
            }
            (AluOp::Sub, Some(Val::Ptr { off: a, .. }), Some(Val::Ptr { off: b, .. })) => {
                set(state, insn.dst, Val::Scalar(a.bvsub(b)));
                return Ok(());
            }
            (AluOp::Add | AluOp::Sub, Some(Val::Ptr { region, off }), _) => {
                let delta = match &src_val {
                    Some(Val::Scalar(v)) => v.clone(),
                    None => BV::from_i64(i64::from(insn.imm), 64),
                    _ => return Err(unknown(state, "arithmetic on two pointers")),
                };
                let off = if op == AluOp::Add {
                    off.bvadd(&delta)
                } else {
                    off.bvsub(&delta)
                };
                set(
                    state,
                    insn.dst,
                    Val::Ptr {
                        region: region.clone(),
                        off,
                    },
                );
                return Ok(());
            }
            (AluOp::Add, Some(Val::Scalar(n)), Some(Val::Ptr { region, off })) => {
                set(
                    state,
                    insn.dst,
                    Val::Ptr {
                        region: region.clone(),
                        off: off.bvadd(n),
                    },
                );
                return Ok(());
            }
            (_, Some(Val::Ptr { .. } | Val::Map(_)), _) if op != AluOp::Mov => {
                return Err(unknown(state, format!("{op:?} on a pointer")));
            }
            _ => {}
        }
    }
    let src = match src_val {
        Some(Val::Scalar(v)) => v,
        Some(_) => return Err(unknown(state, "a pointer used as a number")),
        None => BV::from_i64(i64::from(insn.imm), 64),
    };
    let src = if wide { src } else { src.extract(31, 0) };
    let dst_full = if op == AluOp::Mov {
        bv(0, 64)
    } else {
        scalar(state, insn.dst)?
    };
    let dst = if wide {
        dst_full.clone()
    } else {
        dst_full.extract(31, 0)
    };
    let zero = bv(0, bits);
    let shift_mask = bv(u64::from(bits - 1), bits);
    let signed = insn.off == 1;
    let result = match op {
        AluOp::Add => dst.bvadd(&src),
        AluOp::Sub => dst.bvsub(&src),
        AluOp::Mul => dst.bvmul(&src),
        AluOp::Div | AluOp::Mod if !signed && src.simplify().as_u64().is_some_and(|c| c != 0) => {
            // Unsigned division by a constant: a fresh quotient q with q·c ≤ x < q·c + c
            // (exact, and multiplication by a constant is cheap where a divider circuit is
            // not).
            let c = src.simplify();
            let q = BV::fresh_const("quotient", bits);
            let wide = |v: &BV| v.zero_ext(bits);
            let product = wide(&q).bvmul(wide(&c));
            state.cond.push(Bool::and(&[
                product.bvule(wide(&dst)),
                wide(&dst).bvult(product.bvadd(wide(&c))),
            ]));
            if op == AluOp::Div {
                q
            } else {
                dst.bvsub(q.bvmul(&c))
            }
        }
        AluOp::Div => {
            let q = if signed {
                dst.bvsdiv(&src)
            } else {
                dst.bvudiv(&src)
            };
            src.eq(&zero).ite(&zero, &q)
        }
        AluOp::Mod => {
            let r = if signed {
                dst.bvsrem(&src)
            } else {
                dst.bvurem(&src)
            };
            // x % 0 leaves x (truncated to 32 bits for the 32-bit form).
            src.eq(&zero).ite(&dst, &r)
        }
        AluOp::Or => dst.bvor(&src),
        AluOp::And => dst.bvand(&src),
        AluOp::Xor => dst.bvxor(&src),
        AluOp::Lsh => dst.bvshl(src.bvand(&shift_mask)),
        AluOp::Rsh => dst.bvlshr(src.bvand(&shift_mask)),
        AluOp::Arsh => dst.bvashr(src.bvand(&shift_mask)),
        AluOp::Neg => dst.bvneg(),
        AluOp::Mov => match insn.off {
            0 => src,
            8 | 16 | 32 if (insn.off as u32) < bits => {
                let width = insn.off as u32;
                src.extract(width - 1, 0).sign_ext(bits - width)
            }
            other => {
                return Err(unknown(
                    state,
                    format!("mov with offset {other} is not modelled"),
                ));
            }
        },
        AluOp::End => unreachable!("byte swaps are their own step"),
    };
    let result = if wide { result } else { result.zero_ext(32) };
    set(state, insn.dst, Val::Scalar(result));
    Ok(())
}

fn byte_swap(state: &mut State, insn: &Insn, alu64: bool, source: Source) -> Result<(), Unknown> {
    let value = scalar(state, insn.dst)?;
    let width = insn.imm as u32;
    if !matches!(width, 16 | 32 | 64) {
        return Err(unknown(state, format!("byte swap of width {width}")));
    }
    let low = value.extract(width - 1, 0);
    // On a little-endian machine `to le` only truncates; `to be` and the v4 `bswap` swap.
    let swap = alu64 || source == Source::Reg;
    let out = if swap {
        let bytes: Vec<BV> = (0..width / 8)
            .map(|i| low.extract(i * 8 + 7, i * 8))
            .collect();
        bytes
            .into_iter()
            .reduce(|acc, b| acc.concat(&b))
            .expect("at least two bytes")
    } else {
        low
    };
    let out = if width < 64 {
        out.zero_ext(64 - width)
    } else {
        out
    };
    set(state, insn.dst, Val::Scalar(out));
    Ok(())
}

fn jump(
    state: &mut State,
    insn: &Insn,
    wide: bool,
    op: JmpOp,
    source: Source,
    insns: &[Insn],
    inputs: &Inputs,
) -> Result<Step, Unknown> {
    let narrow = !wide;
    // Jump offsets count 8-byte slots, and a wide `lddw` takes two: map the target slot back
    // to an instruction index.
    let slot_of = |index: usize| {
        insns[..index]
            .iter()
            .map(|i| usize::from(i.slots))
            .sum::<usize>()
    };
    let here = slot_of(state.pc);
    let target_of = |off: i64| -> usize {
        let slot = here as i64 + 1 + off;
        let mut acc = 0i64;
        for (index, i) in insns.iter().enumerate() {
            if acc == slot {
                return index;
            }
            acc += i64::from(i.slots);
        }
        if acc == slot { insns.len() } else { usize::MAX }
    };
    match op {
        JmpOp::Ja => {
            let off = if narrow {
                i64::from(insn.imm)
            } else {
                i64::from(insn.off)
            };
            state.pc = target_of(off);
            return Ok(Step::Next);
        }
        JmpOp::Exit => return Ok(Step::Exit),
        JmpOp::Call => {
            let Some(helper) = insn.helper() else {
                return Err(unknown(
                    state,
                    "calls to BPF subprograms or kfuncs are not modelled",
                ));
            };
            if helper == Helper::MAP_LOOKUP_ELEM {
                return map_lookup(state);
            }
            call(state, helper, inputs)?;
            return Ok(next(state));
        }
        _ => {}
    }
    let target = target_of(i64::from(insn.off));
    let lhs = reg(state, insn.dst)?;
    let rhs = if source == Source::Reg {
        reg(state, insn.src)?
    } else {
        Val::Scalar(BV::from_i64(i64::from(insn.imm), 64))
    };
    let (a, b) = match (lhs, rhs) {
        (Val::Scalar(a), Val::Scalar(b)) => (a, b),
        (Val::Ptr { region: ra, off: a }, Val::Ptr { region: rb, off: b })
            if matches!((&ra, &rb), (Region::Packet, Region::Packet)) =>
        {
            (a, b)
        }
        // A pointer compared with 0 is a NULL check: map-value pointers here are never NULL
        // (the NULL case is its own path, a scalar 0).
        (Val::Ptr { .. }, Val::Scalar(b)) if b.as_u64() == Some(0) => (bv(1, 64), bv(0, 64)),
        _ => {
            return Err(unknown(
                state,
                "a comparison of pointers from different regions",
            ));
        }
    };
    let (a, b) = if narrow {
        (a.extract(31, 0), b.extract(31, 0))
    } else {
        (a, b)
    };
    let cond = match op {
        JmpOp::Jeq => a.eq(&b),
        JmpOp::Jne => a.eq(&b).not(),
        JmpOp::Jgt => a.bvugt(&b),
        JmpOp::Jge => a.bvuge(&b),
        JmpOp::Jlt => a.bvult(&b),
        JmpOp::Jle => a.bvule(&b),
        JmpOp::Jsgt => a.bvsgt(&b),
        JmpOp::Jsge => a.bvsge(&b),
        JmpOp::Jslt => a.bvslt(&b),
        JmpOp::Jsle => a.bvsle(&b),
        JmpOp::Jset => {
            let width = a.get_size();
            a.bvand(&b).eq(bv(0, width)).not()
        }
        JmpOp::Ja | JmpOp::Exit | JmpOp::Call => unreachable!("handled above"),
    };
    Ok(Step::Fork { cond, target })
}

fn map_arg(state: &State, r: u8) -> Result<String, Unknown> {
    match reg(state, r)? {
        Val::Map(name) => Ok(name),
        _ => Err(unknown(state, format!("r{r} should hold a map"))),
    }
}

fn call(state: &mut State, helper: Helper, inputs: &Inputs) -> Result<(), Unknown> {
    let result = match helper {
        Helper::GET_PRANDOM_U32 => {
            if state.draws_used > 255 {
                return Err(unknown(state, "more than 256 random draws"));
            }
            let index = bv(state.draws_used as u64, 8);
            state.draws_used += 1;
            let draw = inputs.draws.select(&index).as_bv().expect("a 32-bit draw");
            Val::Scalar(draw.zero_ext(32))
        }
        Helper::KTIME_GET_NS => {
            let time = if state.times.is_empty() {
                inputs.now.clone()
            } else {
                BV::fresh_const("later_time", 64)
            };
            state.times.push(time.clone());
            Val::Scalar(time)
        }
        Helper::SPIN_LOCK => {
            // Sequentially a lock does nothing; the race check uses the sections it marks.
            state.locks_taken += 1;
            state.lock = Some(state.locks_taken);
            Val::Scalar(bv(0, 64))
        }
        Helper::SPIN_UNLOCK => {
            state.lock = None;
            Val::Scalar(bv(0, 64))
        }
        Helper::MAP_UPDATE_ELEM => {
            let map = map_arg(state, 1)?;
            let key = read_ptr_bits(state, 2, key_bits(state, &map)?)?;
            let value = read_ptr_bits(state, 3, value_bits(state, &map)?)?;
            state.map_keys.push((map.clone(), key.clone()));
            let entry = state.maps.get_mut(&map).expect("checked by key_bits");
            // Maps are assumed not full (an assumption the verdict lists).
            entry.present = entry.present.store(&key, &Bool::from_bool(true));
            entry.values = entry.values.store(&key, &value);
            Val::Scalar(bv(0, 64))
        }
        Helper::MAP_DELETE_ELEM => {
            let map = map_arg(state, 1)?;
            let key = read_ptr_bits(state, 2, key_bits(state, &map)?)?;
            state.map_keys.push((map.clone(), key.clone()));
            let entry = state.maps.get_mut(&map).expect("checked by key_bits");
            let was = entry
                .present
                .select(&key)
                .as_bool()
                .expect("a presence bit");
            entry.present = entry.present.store(&key, &Bool::from_bool(false));
            Val::Scalar(was.ite(&bv(0, 64), &BV::from_i64(-2, 64)))
        }
        Helper::RINGBUF_OUTPUT => {
            let map = map_arg(state, 1)?;
            let size = scalar(state, 3)?
                .simplify()
                .as_u64()
                .ok_or_else(|| unknown(state, "ringbuf_output with a size not known statically"))?;
            if size == 0 || size > 64 {
                return Err(unknown(state, format!("ringbuf_output of {size} bytes")));
            }
            let bytes = read_ptr_bits(state, 2, size as u32 * 8)?;
            state.records.push((map, bytes));
            Val::Scalar(bv(0, 64))
        }
        other => return Err(unknown(state, format!("{other} is not modelled"))),
    };
    set(state, 0, result);
    for r in 1..=5 {
        state.regs[r] = None;
    }
    Ok(())
}

fn key_bits(state: &State, map: &str) -> Result<u32, Unknown> {
    state
        .maps
        .get(map)
        .map(|m| m.key_bits)
        .ok_or_else(|| unknown(state, format!("map `{map}` is not a hash or array map")))
}

fn value_bits(state: &State, map: &str) -> Result<u32, Unknown> {
    state
        .maps
        .get(map)
        .map(|m| m.value_bits)
        .ok_or_else(|| unknown(state, format!("map `{map}` is not a hash or array map")))
}

/// `bpf_map_lookup_elem`: a pointer to the value where the key is present, NULL elsewhere.
fn map_lookup(state: &mut State) -> Result<Step, Unknown> {
    let map = map_arg(state, 1)?;
    let key = read_ptr_bits(state, 2, key_bits(state, &map)?)?;
    state.map_keys.push((map.clone(), key.clone()));
    let present = state.maps[&map]
        .present
        .select(&key)
        .as_bool()
        .expect("a presence bit");
    for r in 1..=5 {
        state.regs[r] = None;
    }
    let hit = Val::Ptr {
        region: Region::MapValue { map, key },
        off: bv(0, 64),
    };
    Ok(Step::Lookup {
        present: present.simplify(),
        hit,
    })
}

/// Reads `bits` bits through the pointer in register `r`.
fn read_ptr_bits(state: &State, r: u8, bits: u32) -> Result<BV, Unknown> {
    match reg(state, r)? {
        Val::Ptr { region, off } => read(state, &region, &off, bits / 8),
        _ => Err(unknown(state, format!("r{r} should be a pointer"))),
    }
}

fn load(state: &mut State, insn: &Insn, size: Size, sign_extend: bool) -> Result<(), Unknown> {
    let size = size.bytes();
    let Val::Ptr { region, off } = reg(state, insn.src)? else {
        return Err(unknown(
            state,
            "a load through something that is not a pointer",
        ));
    };
    let off = off.bvadd(BV::from_i64(i64::from(insn.off), 64));
    record_access(state, AccessKind::Load, &region, &off, size);
    let value = if let Region::Ctx = region {
        ctx_load(state, &off, size)?
    } else {
        let raw = read(state, &region, &off, size)?;
        Val::Scalar(extend(raw, size, sign_extend))
    };
    set(state, insn.dst, value);
    Ok(())
}

fn extend(raw: BV, size: u32, signed: bool) -> BV {
    if size == 8 {
        raw
    } else if signed {
        raw.sign_ext(64 - size * 8)
    } else {
        raw.zero_ext(64 - size * 8)
    }
}

/// `struct xdp_md`: `data` (offset 0) and `data_end` (offset 4) become packet pointers.
fn ctx_load(state: &State, off: &BV, size: u32) -> Result<Val, Unknown> {
    match (off.simplify().as_u64(), size) {
        (Some(0), 4) => Ok(Val::Ptr {
            region: Region::Packet,
            off: bv(0, 64),
        }),
        (Some(4), 4) => Ok(Val::Ptr {
            region: Region::Packet,
            off: state.packet_len.clone(),
        }),
        (Some(other), _) => Err(unknown(
            state,
            format!("xdp_md field at offset {other} is not modelled"),
        )),
        (None, _) => Err(unknown(
            state,
            "a ctx read at an offset not known statically",
        )),
    }
}

/// The constant an offset simplifies to; "unknown" for `what` when it is symbolic (the
/// model addresses stack, sections and map values by constant offsets).
fn static_offset(state: &State, off: &BV, what: &str) -> Result<u64, Unknown> {
    off.simplify().as_u64().ok_or_else(|| {
        unknown(
            state,
            format!("{what} access at an offset not known statically"),
        )
    })
}

fn read(state: &State, region: &Region, off: &BV, size: u32) -> Result<BV, Unknown> {
    let bytes: Vec<BV> = match region {
        Region::Stack => {
            let base = static_offset(state, off, "a stack")?;
            (0..u64::from(size))
                .map(|i| {
                    state
                        .stack
                        .get(&(base + i))
                        .cloned()
                        .ok_or_else(|| unknown(state, "a read of uninitialised stack"))
                })
                .collect::<Result<_, _>>()?
        }
        Region::Packet => (0..u64::from(size))
            .map(|i| select_byte(&state.packet, &off.bvadd(bv(i, 64))))
            .collect(),
        Region::Section(name) => {
            let section = state
                .sections
                .get(name)
                .ok_or_else(|| unknown(state, format!("section `{name}` is not in the model")))?;
            let base = static_offset(state, off, "a global-data")?;
            return Ok(section.read(base, size));
        }
        Region::MapValue { map, key } => {
            let entry = &state.maps[map];
            let value = entry.values.select(key).as_bv().expect("a value");
            let base = static_offset(state, off, "a map-value")?;
            (0..u64::from(size))
                .map(|i| {
                    let bit = ((base + i) * 8) as u32;
                    if bit + 8 > entry.value_bits {
                        Err(unknown(state, "a read past the end of a map value"))
                    } else {
                        Ok(value.extract(bit + 7, bit))
                    }
                })
                .collect::<Result<_, _>>()?
        }
        Region::Ctx => return Err(unknown(state, "a ctx read through a derived pointer")),
    };
    // Little endian: the byte at the highest address is the most significant.
    Ok(bytes
        .into_iter()
        .rev()
        .reduce(|acc, b| acc.concat(&b))
        .expect("at least one byte"))
}

fn select_byte(array: &Array, index: &BV) -> BV {
    array.select(index).as_bv().expect("a byte")
}

fn store(state: &mut State, insn: &Insn, size: Size, source: Source) -> Result<(), Unknown> {
    let size = size.bytes();
    let (region, off) = pointer_at(state, insn)?;
    let value = match source {
        Source::Reg => match reg(state, insn.src)? {
            Val::Scalar(v) => v,
            _ => {
                return Err(unknown(
                    state,
                    "storing a pointer to memory is not modelled",
                ));
            }
        },
        Source::Imm => BV::from_i64(i64::from(insn.imm), 64),
    };
    let value = value.extract(size * 8 - 1, 0);
    record_access(state, AccessKind::Store, &region, &off, size);
    write(state, &region, &off, &value)
}

/// The region and offset `dst + off` points at, for a store.
fn pointer_at(state: &State, insn: &Insn) -> Result<(Region, BV), Unknown> {
    let Val::Ptr { region, off } = reg(state, insn.dst)? else {
        return Err(unknown(
            state,
            "a store through something that is not a pointer",
        ));
    };
    Ok((region, off.bvadd(BV::from_i64(i64::from(insn.off), 64))))
}

fn record_access(state: &mut State, kind: AccessKind, region: &Region, off: &BV, size: u32) {
    let location = match region {
        Region::Section(section) => match off.simplify().as_u64() {
            Some(offset) => Location::Global {
                section: section.clone(),
                offset,
                size,
            },
            None => return,
        },
        Region::MapValue { map, .. } => Location::MapValue { map: map.clone() },
        _ => return,
    };
    state.accesses.push(Access {
        pc: state.pc,
        kind,
        location,
        lock_section: state.lock,
    });
}

fn atomic(state: &mut State, insn: &Insn, size: Size) -> Result<(), Unknown> {
    let size = size.bytes();
    let (region, off) = pointer_at(state, insn)?;
    let (region, off) = (&region, &off);
    let Val::Scalar(value) = reg(state, insn.src)? else {
        return Err(unknown(
            state,
            "storing a pointer to memory is not modelled",
        ));
    };
    let value = value.extract(size * 8 - 1, 0);
    record_access(state, AccessKind::Atomic, region, off, size);
    if size != 4 && size != 8 {
        return Err(unknown(
            state,
            "an atomic operation on a size other than 4 or 8",
        ));
    }
    let old = read(state, region, off, size)?;
    let Some((op, fetch)) = AtomicOp::decode(insn.imm) else {
        return Err(unknown(
            state,
            format!("atomic operation {:#04x} is not modelled", insn.imm),
        ));
    };
    let new = match op {
        AtomicOp::Add => old.bvadd(&value),
        AtomicOp::Or => old.bvor(&value),
        AtomicOp::And => old.bvand(&value),
        AtomicOp::Xor => old.bvxor(&value),
        AtomicOp::Xchg => value.clone(),
        AtomicOp::Cmpxchg => {
            // cmpxchg: compare with r0, write src if equal, r0 gets the old value.
            let expected = scalar(state, 0)?.extract(size * 8 - 1, 0);
            let new = old.eq(&expected).ite(&value, &old);
            write(state, region, off, &new)?;
            set(state, 0, Val::Scalar(extend(old, size, false)));
            return Ok(());
        }
    };
    write(state, region, off, &new)?;
    if fetch {
        set(state, insn.src, Val::Scalar(extend(old, size, false)));
    }
    Ok(())
}

fn write(state: &mut State, region: &Region, off: &BV, value: &BV) -> Result<(), Unknown> {
    let size = value.get_size() / 8;
    match region {
        Region::Stack => {
            let base = static_offset(state, off, "a stack")?;
            for i in 0..size {
                state
                    .stack
                    .insert(base + u64::from(i), value.extract(i * 8 + 7, i * 8));
            }
        }
        Region::Packet => {
            for i in 0..size {
                let at = off.bvadd(bv(u64::from(i), 64));
                state.packet = state.packet.store(&at, &value.extract(i * 8 + 7, i * 8));
            }
        }
        Region::Section(name) => {
            if name.starts_with(".rodata") {
                return Err(unknown(state, format!("a write to read-only `{name}`")));
            }
            let base = static_offset(state, off, "a global-data")?;
            let pc = state.pc;
            let section = state.sections.get_mut(name).ok_or_else(|| Unknown {
                pc,
                reason: format!("section `{name}` is not in the model"),
            })?;
            section.write(base, value.clone());
        }
        Region::MapValue { map, key } => {
            let base = static_offset(state, off, "a map-value")?;
            let entry = state.maps.get_mut(map).expect("a known map");
            let current = entry.values.select(key).as_bv().expect("a value");
            let total = entry.value_bits;
            let lo = (base * 8) as u32;
            let hi = lo + size * 8;
            if hi > total {
                return Err(Unknown {
                    pc: state.pc,
                    reason: "a write past the end of a map value".to_string(),
                });
            }
            let mut parts = Vec::new();
            if hi < total {
                parts.push(current.extract(total - 1, hi));
            }
            parts.push(value.clone());
            if lo > 0 {
                parts.push(current.extract(lo - 1, 0));
            }
            let updated = parts
                .into_iter()
                .reduce(|acc, p| acc.concat(&p))
                .expect("a part");
            entry.values = entry.values.store(key, &updated);
        }
        Region::Ctx => return Err(unknown(state, "a write to the XDP context")),
    }
    Ok(())
}
