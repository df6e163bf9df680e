//! The equivalence query (LANGUAGE.md §4.6): for each path of the program, "its condition
//! holds and some observable differs from the policy's". `unsat` on every path is a proof;
//! `sat` is a counterexample read from the model; a timeout is "unknown". The solver's answer
//! is matched as the enum it is, never as text.

use std::time::{Duration, Instant};

use num_bigint::BigInt;
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_dsl::ir::{Program, Type};
use z3::ast::{Array, Ast, BV, Bool};

use simplebpf_compiler::cancel::{Cancel, Interrupted};

use crate::filter;
use crate::policy::{self, PolicyOutcome, Sym};
use crate::solve::{Answer, Solving};
use crate::symexec::{self, Inputs, Location, PathEnd};
use crate::verdict::{Counterexample, Verdict};
use simplebpf_compiler::contract::{self, GlobalPlace, Place, VarPlace};

const XDP_DROP: u64 = 1;
const XDP_PASS: u64 = 2;
/// The most linear bytes an XDP program sees on x86-64 with 4 KiB pages (a page less 256
/// bytes of headroom and 320 of `skb_shared_info`; `BPF_PROG_TEST_RUN` cuts longer input to
/// this, measured on kernel 6.18): LANGUAGE.md §4.6. Every counterexample can be replayed.
pub const MAX_PACKET: u64 = 3520;

#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// Z3 resource units a check may use (`rlimit`): what decides "unknown", the same on an
    /// idle and a busy machine.
    pub budget: u64,
    /// A wall-clock safety net only: a check still running after this long is "unknown".
    pub timeout: Duration,
    /// Which XDP program of the object (the only one when `None`).
    pub program: Option<String>,
    /// Stops symbolic execution and the solver when cancelled.
    pub cancel: Cancel,
}

/// The slice of the budget the first query, of all observables at once, may use before the
/// observables are asked one by one.
const JOINT_BUDGET: u64 = 5_000_000;

/// The default budget: about 10 to 40 s of solving on this project's machine.
pub const DEFAULT_BUDGET: u64 = 100_000_000;

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 9000,
            budget: DEFAULT_BUDGET,
            timeout: Duration::from_secs(600),
            program: None,
            cancel: Cancel::new(),
        }
    }
}

/// What a check spent of its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub used: u64,
}

/// The assumptions every proof rests on; the report lists them.
pub fn assumptions() -> Vec<String> {
    vec![
        "maps are never full (an insert always succeeds)".to_string(),
        "time is monotonic: a stored Instant is not later than the request's time, and each later bpf_ktime_get_ns is no smaller than the one before".to_string(),
        format!("frames are 14 to {MAX_PACKET} bytes: XDP never sees less than an Ethernet header, nor more than the linear buffer of a single-buffer program (multi-buffer xdp.frags programs are outside this version)"),
        "a state variable no handler writes holds its init value (docs/language.md §4.3)".to_string(),
        "draws are matched by order: the k-th bpf_get_prandom_u32 is the policy's k-th draw (at most 256)".to_string(),
    ]
}

/// The policy encoded over the inputs of objects of one shape (the same sections, fields,
/// read-only contents, maps and state places): candidates of one layout share it.
#[derive(Debug, Clone)]
pub struct Encoding {
    inputs: Inputs,
    is_rpc: Bool,
    policy: PolicyOutcome,
}

/// What makes two objects' encodings the same: their state places and the shape of their
/// memory.
fn shape(places: &[VarPlace], object: &BpfObject) -> String {
    let maps: Vec<String> = object
        .maps
        .iter()
        .map(|m| {
            let fixed = if m.name.starts_with(".rodata") {
                &m.initial[..]
            } else {
                &[]
            };
            format!(
                "{}:{:?}:{}:{}:{:?}",
                m.name, m.kind, m.key_size, m.value_size, fixed
            )
        })
        .collect();
    format!("{places:?}|{maps:?}")
}

/// The solver's verdict on the object's XDP program; `Err` when the work was cancelled.
/// `encodings` caches the policy's encoding by the object's shape.
pub fn check(
    program: &Program,
    object: &BpfObject,
    options: &Options,
    encodings: &mut std::collections::HashMap<String, Encoding>,
) -> Result<Verdict, Interrupted> {
    let verdict = check_uncancelled(program, object, options, encodings);
    options.cancel.check()?;
    Ok(verdict)
}

fn check_uncancelled(
    program: &Program,
    object: &BpfObject,
    options: &Options,
    encodings: &mut std::collections::HashMap<String, Encoding>,
) -> Verdict {
    let started = Instant::now();
    let unknown = |reason: String| Verdict::Unknown { reason };
    let places = match places(program, object) {
        Ok(places) => places,
        Err(reason) => return unknown(reason),
    };
    let prog = match object.xdp_program(options.program.as_deref()) {
        Ok(p) => p,
        Err(err) => return unknown(err.to_string()),
    };
    let key = shape(&places, object);
    let encoding = match encodings.get(&key) {
        Some(encoding) => encoding.clone(),
        None => match encode(program, &places, object, options.port) {
            Ok(encoding) => {
                encodings.insert(key, encoding.clone());
                encoding
            }
            Err(reason) => return unknown(reason),
        },
    };
    let Encoding {
        inputs,
        is_rpc,
        policy,
    } = encoding;
    let variable_of =
        |location: &Location| variable_at(&places, location).map(|var| var.name.clone());
    let execution = match symexec::execute(
        &prog.insns,
        &inputs,
        started + options.timeout,
        &options.cancel,
        &variable_of,
    ) {
        Ok(execution) => execution,
        Err(u) => {
            return unknown(format!("instruction {}: {}", u.pc, u.reason));
        }
    };
    let paths = execution.paths;
    if let Some((instruction, variable)) = execution.race {
        return Verdict::Race {
            instruction,
            variable,
        };
    }
    let base = base_assumptions(&inputs, &places);

    // One query per observable (the action, each state variable, the packet): "some path
    // runs and that observable differs there". The paths are few (states merge where they
    // meet), and observables are often independent of each other — n token buckets are n
    // small queries, not one that grows with n. One set of solvers answers them all, with
    // push and pop (`Solving`).
    let mut per_path: Vec<PathQuery> = Vec::new();
    for path in &paths {
        let differences = match differs(path, &policy, &places, &inputs, &is_rpc) {
            Ok(d) => d,
            Err(reason) => return unknown(reason),
        };
        let mut runs: Vec<Bool> = path
            .later_times
            .iter()
            .map(|t| t.bvuge(&inputs.now))
            .collect();
        runs.push(path.cond.clone());
        per_path.push(PathQuery { runs, differences });
    }
    let mut spent = 0;
    let mut solving = Solving::new();
    let path_count = paths.len();
    let equivalent = |used: u64| Verdict::Equivalent {
        ms: started.elapsed().as_millis(),
        paths: path_count,
        assumptions: assumptions(),
        budget: Budget {
            limit: options.budget,
            used,
        },
    };
    // A counterexample of a query is one of the program: its model is used as it is.
    let refute = |model: &z3::Model, cases: &[Bool]| {
        let holds = |case: &Bool| model.eval(case, true).and_then(|b| b.as_bool()) == Some(true);
        let Some(index) = cases.iter().position(holds) else {
            return unknown("the solver's model runs no path of the program".to_string());
        };
        let counterexample = Counterexample::from_model(
            model,
            &inputs,
            &places,
            &paths[index],
            &policy.map_keys,
            object,
        );
        Verdict::NotEquivalent {
            counterexample: Box::new(counterexample),
            ms: started.elapsed().as_millis(),
        }
    };
    // First all observables at once, with a slice of the budget: where the program and the
    // policy compute alike (counters, thresholds) one query is fastest; only where that runs
    // out are the observables asked one by one.
    let observables = by_observable(&per_path);
    let together: Vec<Bool> = (0..paths.len())
        .map(|path| {
            Bool::or(
                &observables
                    .iter()
                    .map(|cases| cases[path].clone())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let first = Options {
        budget: options.budget.min(JOINT_BUDGET),
        ..options.clone()
    };
    let mut query = base.clone();
    query.push(Bool::or(&together));
    match solving.solve(&query, &inputs, &first, &mut spent) {
        Answer::Unsat => return equivalent(spent),
        Answer::Sat(model) => return refute(&model, &together),
        Answer::Unknown => {}
    }
    // Before the observables are asked one by one, whether each path's packet is an RPC is
    // decided once, not again by every observable's query.
    for path in &mut per_path {
        settle_rpc(
            path,
            &base,
            &inputs,
            &is_rpc,
            options,
            &mut solving,
            &mut spent,
        );
    }
    let queries = by_observable(&per_path);
    for cases in &queries {
        let mut query = base.clone();
        query.push(Bool::or(cases));
        match solving.solve(&query, &inputs, options, &mut spent) {
            Answer::Unsat => {}
            Answer::Sat(model) => return refute(&model, cases),
            Answer::Unknown if spent >= options.budget => {
                return unknown(format!(
                    "the solver used its whole budget ({} resource units) without an answer",
                    options.budget
                ));
            }
            Answer::Unknown => {
                return unknown(format!(
                    "the solver gave no answer (it used {spent} of {} resource units; the safety-net timeout is {} s)",
                    options.budget,
                    options.timeout.as_secs()
                ));
            }
        }
    }
    equivalent(spent)
}

/// Every state variable's place in the object, or why the object does not follow the
/// contract.
pub(crate) fn places(program: &Program, object: &BpfObject) -> Result<Vec<VarPlace>, String> {
    contract::read(program, object)
        .map(|contract| contract.vars)
        .map_err(|err| err.to_string())
}

/// The stored bytes of a global as a term.
fn read(
    sections: &std::collections::BTreeMap<String, crate::symexec::Section>,
    global: &GlobalPlace,
) -> BV {
    policy::read_global(sections, &global.section, global.offset, global.size)
}

/// The inputs of an object of this shape and the policy over them.
fn encode(
    program: &Program,
    places: &[VarPlace],
    object: &BpfObject,
    port: u16,
) -> Result<Encoding, String> {
    let fields: Vec<(&str, u64, u32)> = places
        .iter()
        .filter_map(VarPlace::global)
        .map(|g| (g.section.as_str(), g.offset, g.size))
        .collect();
    let inputs = symexec::fresh_inputs(object, &fields);
    let (is_rpc, payload_len) = filter::rpc(&inputs.packet, &inputs.packet_len, port);
    let policy = policy::encode(program, places, &inputs, &payload_len).map_err(
        |policy::Unsupported(what)| {
            format!("the policy uses {what}, which the checker does not model")
        },
    )?;
    Ok(Encoding {
        inputs,
        is_rpc,
        policy,
    })
}

/// The state variable an access touches, if any.
fn variable_at<'p>(places: &'p [VarPlace], location: &Location) -> Option<&'p VarPlace> {
    places.iter().find(|var| match location {
        Location::Global {
            section: s,
            offset: o,
            size: n,
        } => var.global().is_some_and(|g| {
            g.section == *s && *o < g.offset + u64::from(g.size) && g.offset < o + u64::from(*n)
        }),
        Location::MapValue { map: m } => matches!(&var.place, Place::HashMap { map } if map == m),
    })
}

/// One path's part of the query: what makes it run, and for each observable, "it differs
/// from the policy's".
struct PathQuery {
    runs: Vec<Bool>,
    differences: Vec<Bool>,
}

/// For each observable, each path's case "it runs and the observable differs".
fn by_observable(paths: &[PathQuery]) -> Vec<Vec<Bool>> {
    let mut observables: Vec<Vec<Bool>> = Vec::new();
    for path in paths {
        for (index, difference) in path.differences.iter().enumerate() {
            let mut case = path.runs.clone();
            case.push(difference.clone());
            if observables.len() <= index {
                observables.push(Vec::new());
            }
            observables[index].push(Bool::and(&case));
        }
    }
    observables
}

/// The units proving that a path's packet is (or is not) an RPC may use.
const RPC_LEMMA_BUDGET: u64 = 2_000_000;

/// Where the path's condition decides whether the packet is an RPC, that answer replaces
/// `is_rpc` in the path's differences. Sound both ways: it is proven under the path's
/// condition, which every case of the path includes unchanged, so the cases keep exactly
/// their models. Measured on eight token buckets: each state variable's own query paid
/// about 0.3 s to relate the program's parsing to `is_rpc` again (10 ms once settled), and
/// the whole proof fell from 14–16 s to about 11 s.
fn settle_rpc(
    path: &mut PathQuery,
    base: &[Bool],
    inputs: &Inputs,
    is_rpc: &Bool,
    options: &Options,
    solving: &mut Solving,
    spent: &mut u64,
) {
    for (contrary, value) in [(is_rpc.not(), true), (is_rpc.clone(), false)] {
        let mut query: Vec<Bool> = base.iter().chain(&path.runs).cloned().collect();
        query.push(contrary);
        let slice = Options {
            budget: options.budget.saturating_sub(*spent).min(RPC_LEMMA_BUDGET),
            ..options.clone()
        };
        let mut used = 0;
        let answer = solving.solve(&query, inputs, &slice, &mut used);
        *spent += used;
        if matches!(answer, Answer::Unsat) {
            let known = Bool::from_bool(value);
            path.differences = path
                .differences
                .iter()
                .map(|d| d.substitute(&[(is_rpc, &known)]))
                .collect();
            return;
        }
    }
}

fn base_assumptions(inputs: &Inputs, places: &[VarPlace]) -> Vec<Bool> {
    let mut facts = vec![
        inputs.packet_len.bvuge(BV::from_u64(14, 64)),
        inputs.packet_len.bvule(BV::from_u64(MAX_PACKET, 64)),
    ];
    for var in places {
        if var.ty == Type::Instant
            && let Place::Global(global) = &var.place
        {
            let stored = read(&inputs.sections, global);
            facts.push(stored.bvule(&inputs.now));
        }
    }
    facts
}

/// For each observable of this path, "it differs from the policy's" (always in the same
/// order: the action, each state variable, the packet).
fn differs(
    path: &PathEnd,
    policy: &PolicyOutcome,
    places: &[VarPlace],
    inputs: &Inputs,
    is_rpc: &Bool,
) -> Result<Vec<Bool>, String> {
    let mut differences = Vec::new();
    // The action (the low 32 bits of r0 are what XDP reads).
    let expected = Bool::and(&[is_rpc.clone(), policy.drop.clone()])
        .ite(&BV::from_u64(XDP_DROP, 32), &BV::from_u64(XDP_PASS, 32));
    differences.push(path.action.extract(31, 0).eq(&expected).not());

    for (index, var) in places.iter().enumerate() {
        match &var.place {
            Place::Constant(_) => {}
            Place::Global(global) => {
                let post = read(&path.sections, global);
                let pre = read(&inputs.sections, global);
                let expected = policy.vars[index]
                    .clone()
                    .ok_or("a state value the policy lost")?;
                let equal = stored_equals(&post, &expected, &var.ty, var.scale.as_ref());
                // Not an RPC: nothing may change.
                differences.push(is_rpc.ite(&equal.not(), &post.eq(&pre).not()));
            }
            Place::HashMap { map } => {
                let (present, values) = policy
                    .maps
                    .get(map)
                    .ok_or_else(|| format!("the policy's map `{map}` is missing"))?;
                let (pre_present, pre_values) =
                    (&inputs.maps[map].present, &inputs.maps[map].values);
                let program = &path.maps[map];
                let same_as_policy =
                    Bool::and(&[program.present.eq(present), program.values.eq(values)]);
                let unchanged = Bool::and(&[
                    program.present.eq(pre_present),
                    program.values.eq(pre_values),
                ]);
                differences.push(is_rpc.ite(&same_as_policy.not(), &unchanged.not()));
            }
            Place::RingBuf { map, len } => {
                let post = read(&path.sections, len);
                let pre = read(&inputs.sections, len);
                let expected = match &policy.vars[index] {
                    Some(Sym::Bits(v, _)) => v.clone(),
                    _ => return Err("a vector length the policy lost".to_string()),
                };
                differences.push(is_rpc.ite(&post.eq(&expected).not(), &post.eq(&pre).not()));
                differences.push(records_differ(path, policy, map, var, is_rpc)?);
            }
        }
    }
    // The packet is never modified in this version.
    differences.push(path.packet.eq(&inputs.packet).not());
    Ok(differences)
}

/// Whether a stored value (`raw`, the program's bytes) means the policy's value `expected`.
fn stored_equals(raw: &BV, expected: &Sym, ty: &Type, scale: Option<&BigInt>) -> Bool {
    match (ty, expected) {
        (Type::Float, Sym::Float { num, den }) => {
            let scale = scale.cloned().unwrap_or_else(|| BigInt::from(1));
            // raw/scale == num/den  ⇔  raw·(den/g) == num·(scale/g), each side wide enough
            // not to wrap.
            let g = num_integer::Integer::gcd(den, &scale);
            let lhs = policy::scale_by(raw, &(den / &g));
            let rhs = policy::scale_by(num, &(&scale / &g));
            let w = lhs.get_size().max(rhs.get_size());
            policy::widen(&lhs, w).eq(policy::widen(&rhs, w))
        }
        (Type::Bool, Sym::Bool(b)) => raw.eq(BV::from_u64(0, raw.get_size())).not().eq(b),
        (_, Sym::Bits(v, _)) => raw.eq(v),
        _ => Bool::from_bool(false),
    }
}

fn records_differ(
    path: &PathEnd,
    policy: &PolicyOutcome,
    map: &str,
    var: &VarPlace,
    is_rpc: &Bool,
) -> Result<Bool, String> {
    let emitted: Vec<&BV> = path
        .records
        .iter()
        .filter(|(m, _)| m == map)
        .map(|(_, b)| b)
        .collect();
    let appended: Vec<&(Bool, String, Sym)> = policy
        .records
        .iter()
        .filter(|(_, v, _)| v == &var.name)
        .collect();
    let element = match &var.ty {
        Type::Vec(e) => (**e).clone(),
        _ => return Err(format!("`{}` is not a vector", var.name)),
    };
    // The count of policy appends, and each append's position among them.
    let one = BV::from_u64(1, 16);
    let zero = BV::from_u64(0, 16);
    let mut position = zero.clone();
    let mut same = Vec::new();
    for (when, _, value) in &appended {
        let mut matches_some = Vec::new();
        for (j, bytes) in emitted.iter().enumerate() {
            let here = position.eq(BV::from_u64(j as u64, 16));
            matches_some.push(Bool::and(&[
                here,
                stored_equals(bytes, value, &element, var.scale.as_ref()),
            ]));
        }
        same.push(when.implies(Bool::or(&matches_some)));
        position = when.ite(&position.bvadd(&one), &position);
    }
    let count_matches = position.eq(BV::from_u64(emitted.len() as u64, 16));
    let policy_ok = Bool::and(&[Bool::and(&same), count_matches]);
    let nothing = Bool::from_bool(emitted.is_empty());
    Ok(is_rpc.ite(&policy_ok.not(), &nothing.not()))
}

/// The bytes of the symbolic packet a model chose.
pub fn packet_bytes(model: &z3::Model, packet: &Array, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let byte = packet
                .select(&BV::from_u64(i as u64, 64))
                .as_bv()
                .expect("a byte");
            model
                .eval(&byte, true)
                .and_then(|b| b.as_u64())
                .unwrap_or(0) as u8
        })
        .collect()
}
