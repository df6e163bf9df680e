//! The rules backend: IR to XDP C (LANGUAGE.md §4), deterministic, with exact float-to-integer
//! rewriting. The design is in `docs/backend.md`.

mod analysis;
mod handler;
pub mod layout;
mod linear;
mod prelude;
mod reshape;
pub mod strategy;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::One;
use simplebpf_dsl::interp::{self, Value};
use simplebpf_dsl::ir::{Action, LocalId, Program, StateId, Stmt, Type};
use simplebpf_dsl::{Code, Diagnostic};

use handler::{Draws, Gen, ScaleVar, Setup};
use layout::{Codec, Layout, Storage, VarLayout, is_scalar};
pub use strategy::{AddendPlace, BranchShape, FilterShape, LockPlace, Strategy, VerdictShape};

pub use crate::contract::EncodeError;
use crate::contract::{len_symbol, scale_symbol};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The UDP port of the service (§4.1).
    pub port: u16,
    /// The policy's name: the XDP function is `<name>_req`.
    pub name: String,
    /// A test build: draws and time come from globals the harness writes. Never shipped.
    pub test_hooks: bool,
    /// How the program is shaped; every strategy means the same.
    pub strategy: Strategy,
}

#[derive(Debug, Clone)]
pub struct Emitted {
    pub c_source: String,
    pub layout: Layout,
    /// The XDP function's name.
    pub function: String,
}

/// Scales above this are refused: a fixed-point scale must leave room for values.
const MAX_SCALE_BITS: u64 = 62;
const MAX_SCALE_PASSES: usize = 64;

/// Generates the C program for a checked, lowered policy.
pub fn emit(program: &Program, options: &Options) -> Result<Emitted, Vec<Diagnostic>> {
    let refusals = simplebpf_dsl::refusals(program);
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let mut diagnostics = Vec::new();
    check_resp(program, &mut diagnostics);
    if let Some(span) = analysis::first_draw(&program.init) {
        diagnostics.push(
            Diagnostic::new(Code::TargetUnsupported, span, "randomf in init is not supported on the eBPF target yet")
                .with_label("drawn when the program loads")
                .with_help("the object's initial data is computed at build time; give the state a constant initial value"),
        );
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let merged;
    let program = match options.strategy.branches {
        BranchShape::AsWritten => program,
        BranchShape::Merged => {
            merged = Program {
                req: reshape::merge_branches(&program.req),
                ..program.clone()
            };
            &merged
        }
    };
    let initial = interp::load(program, &[], 0).map_err(|err| {
        vec![Diagnostic::new(
            Code::TargetUnsupported,
            program
                .init
                .body
                .first()
                .map(analysis::stmt_span)
                .unwrap_or_default(),
            format!("init cannot run at build time: {err}"),
        )]
    })?;
    let time_dependent = analysis::init_time_dependent(&program.init);

    let mut storage = Vec::new();
    for (index, var) in program.state.iter().enumerate() {
        let id = StateId(index as u32);
        let value = initial.state.vars[&var.name].clone();
        let constant = !var.written_by_handlers && !time_dependent.contains(&id);
        if let Err(diagnostic) = check_name(&var.name, var.span) {
            diagnostics.push(*diagnostic);
            continue;
        }
        match choose_storage(&var.ty, value, constant, var.capacity) {
            Ok(chosen) => storage.push(chosen),
            Err(what) => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::TargetUnsupported,
                        var.span,
                        format!("{what} is not supported on the eBPF target yet"),
                    )
                    .with_label("declared here")
                    .with_help("scalars (int, uint, bool, float, Instant), maps of scalars and vectors of scalars can be stored; anything else only as a constant that no handler writes"),
                );
                storage.push(Storage::Folded(Value::Bool(false)));
            }
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }

    let folded;
    let mut min_payload = 0;
    let program = match (options.strategy.branches, options.strategy.filter) {
        (BranchShape::Merged, FilterShape::Fused) => {
            let value = |id: StateId| match &storage[id.0 as usize] {
                Storage::Folded(Value::Int(v)) => Some(i128::from(*v)),
                Storage::Folded(Value::Uint(v)) => Some(i128::from(*v)),
                _ => None,
            };
            match reshape::fold_min_payload(&program.req, &value) {
                Some(fold) => {
                    min_payload = fold.bytes;
                    folded = Program {
                        req: fold.handler,
                        ..program.clone()
                    };
                    &folded
                }
                None => program,
            }
        }
        _ => program,
    };
    let stored = |id: StateId| !matches!(storage[id.0 as usize], Storage::Folded(_));
    let sharing = analysis::sharing(program, &program.req, &stored);
    if let Some((map, span)) = sharing.map_read_and_written {
        diagnostics.push(
            Diagnostic::new(
                Code::TargetUnsupported,
                span,
                format!(
                    "reading and writing the map `{}` in one request is not supported on the eBPF target yet",
                    program.state_var(map).name
                ),
            )
            .with_label("read-modify-write of a map")
            .with_help("concurrent requests would need a lock around map helper calls, which the kernel does not allow"),
        );
    }
    if let (Some(read), Some(call)) = (sharing.needs_lock, sharing.helper_call) {
        diagnostics.push(
            Diagnostic::new(
                Code::TargetUnsupported,
                read,
                "this request reads state it also writes and uses a map or vector: not supported on the eBPF target yet",
            )
            .with_label("needs the lock")
            .with_secondary(call, "a helper call the lock cannot enclose")
            .with_help("the kernel forbids helper calls inside a bpf_spin_lock section"),
        );
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }

    let locked = sharing.needs_lock.is_some();
    let draws = if locked {
        Draws::Queue(analysis::max_draws(&program.req.body))
    } else {
        Draws::Inline
    };
    let draw_call = if options.test_hooks {
        "sb_test_draw()"
    } else {
        "bpf_get_prandom_u32()"
    };
    let local_names = local_names(program);

    // The fixed point of the scales: each pass may find that a variable needs a finer scale
    // for what is stored into it; a scale that keeps growing has no exact integer form.
    let mut scales: BTreeMap<ScaleVar, BigInt> = BTreeMap::new();
    for (index, var) in program.state.iter().enumerate() {
        if var.ty == Type::Float
            && let Value::Float(v) = &initial.state.vars[&var.name]
        {
            scales.insert(ScaleVar::State(StateId(index as u32)), v.denom().clone());
        }
    }
    let mut passes = 0;
    let generated = loop {
        passes += 1;
        let setup = Setup {
            program,
            handler: &program.req,
            storage: &storage,
            scales: &scales,
            local_names: &local_names,
            atomic_adds: &sharing.atomic_adds,
            draws,
            draw_call,
            locked,
            addends: options.strategy.addends,
            verdicts: options.strategy.verdicts,
        };
        let generated = Gen::run(&setup);
        let mut changed = None;
        for (var, (needed, span)) in &generated.required {
            let current = scales.get(var).cloned().unwrap_or_else(BigInt::one);
            let next = current.lcm(needed);
            if next != current {
                changed = Some((*var, next.clone(), *span));
                scales.insert(*var, next);
            }
        }
        match changed {
            None => break generated,
            Some((var, scale, span))
                if scale.bits() > MAX_SCALE_BITS || passes >= MAX_SCALE_PASSES =>
            {
                let name = scale_var_name(program, var);
                return Err(vec![
                    Diagnostic::new(
                        Code::NoExactInteger,
                        span,
                        format!("the value stored in `{name}` has no exact fixed-point form"),
                    )
                    .with_label("its denominator grows with every request")
                    .with_help("each request divides the stored value again, so no fixed scale holds every value it takes; use an integer or a divisor that cancels"),
                ]);
            }
            Some(_) => {}
        }
    };
    if !generated.diagnostics.is_empty() {
        return Err(generated.diagnostics);
    }

    // Record the final scales in the layout.
    let scale = |var: ScaleVar| Some(scales.get(&var).cloned().unwrap_or_else(BigInt::one));
    for (index, slot) in storage.iter_mut().enumerate() {
        let id = StateId(index as u32);
        match slot {
            Storage::Global(scalar) if scalar.ty == Type::Float => {
                scalar.scale = scale(ScaleVar::State(id))
            }
            Storage::HashMap { value, .. } if value.ty == Type::Float => {
                value.scale = scale(ScaleVar::MapValue(id))
            }
            Storage::RingBuf { element } if element.ty == Type::Float => {
                element.scale = scale(ScaleVar::VecElement(id))
            }
            _ => {}
        }
    }
    let layout = Layout {
        vars: program
            .state
            .iter()
            .zip(&storage)
            .map(|(var, storage)| VarLayout {
                name: var.name.clone(),
                ty: var.ty.clone(),
                storage: storage.clone(),
            })
            .collect(),
        lock: locked,
        init_reads_time: analysis::reads_time(&program.init),
        test_hooks: options.test_hooks,
    };

    let function = format!("{}_req", c_identifier(&options.name));
    let c_source = assemble(&Assembly {
        program,
        options,
        layout: &layout,
        initial: &initial.state,
        local_names: &local_names,
        generated: &generated,
        function: &function,
        draws,
        min_payload,
    })
    .map_err(|diagnostic| vec![*diagnostic])?;
    Ok(Emitted {
        c_source,
        layout,
        function,
    })
}

fn check_resp(program: &Program, diagnostics: &mut Vec<Diagnostic>) {
    for stmt in &program.resp.body {
        if !matches!(
            stmt,
            Stmt::Send {
                action: Action::Forward,
                ..
            }
        ) {
            diagnostics.push(
                Diagnostic::new(
                    Code::TargetUnsupported,
                    analysis::stmt_span(stmt),
                    "a resp handler that does more than forward the response is not supported on the eBPF target yet",
                )
                .with_label("resp has an effect here")
                .with_help("XDP sees requests on ingress only; running resp needs an egress hook, which this version lacks"),
            );
            return;
        }
    }
}

fn choose_storage(
    ty: &Type,
    value: Value,
    constant: bool,
    capacity: Option<u64>,
) -> Result<Storage, String> {
    if constant {
        return Ok(Storage::Folded(value));
    }
    let scalar = |ty: &Type| Codec {
        ty: ty.clone(),
        scale: None,
    };
    match ty {
        ty if is_scalar(ty) => Ok(Storage::Global(scalar(ty))),
        Type::Map(k, v) if is_scalar(k) && **k != Type::Float && is_scalar(v) => {
            Ok(Storage::HashMap {
                key: scalar(k),
                value: scalar(v),
                capacity: capacity.unwrap_or(simplebpf_dsl::ir::DEFAULT_MAP_CAPACITY),
            })
        }
        Type::Vec(e) if is_scalar(e) => Ok(Storage::RingBuf { element: scalar(e) }),
        other => Err(format!("a `{other}` state variable that handlers write")),
    }
}

const C_RESERVED: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "ctx",
    "now",
    "payload_len",
    "action",
    "key",
    "value",
    "record",
    "data",
    "data_end",
    "LICENSE",
    "SERVICE_PORT",
    "unlock",
    "main",
];

fn is_reserved(name: &str) -> bool {
    C_RESERVED.contains(&name)
        || name.starts_with("sb_")
        || name.starts_with("bpf_")
        || name.starts_with("__")
}

fn check_name(name: &str, span: simplebpf_dsl::Span) -> Result<(), Box<Diagnostic>> {
    if is_reserved(name) {
        return Err(Box::new(
            Diagnostic::new(
                Code::TargetUnsupported,
                span,
                format!("the state name `{name}` is reserved in the generated C"),
            )
            .with_label("the global would be named this")
            .with_help(
                "state variables become C globals of the same name (docs/language.md §4.3); rename it",
            ),
        ));
    }
    Ok(())
}

fn c_identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'p');
    }
    out
}

/// C names for `req`'s locals: the policy's own where possible.
fn local_names(program: &Program) -> Vec<String> {
    let mut taken: Vec<String> = program.state.iter().map(|var| var.name.clone()).collect();
    taken.extend(program.state.iter().map(|var| len_symbol(&var.name)));
    let mut names = Vec::new();
    for (index, local) in program.req.locals.iter().enumerate() {
        let mut name = c_identifier(&local.name);
        if is_reserved(&name) || taken.contains(&name) || taken.contains(&format!("{name}_some")) {
            name = format!("{name}_l{index}");
        }
        taken.push(name.clone());
        taken.push(format!("{name}_some"));
        names.push(name);
    }
    names
}

fn scale_var_name(program: &Program, var: ScaleVar) -> String {
    match var {
        ScaleVar::State(id) => program.state_var(id).name.clone(),
        ScaleVar::MapValue(id) => format!("{}[value]", program.state_var(id).name),
        ScaleVar::VecElement(id) => format!("{}[record]", program.state_var(id).name),
        ScaleVar::Local(LocalId(index)) => program.req.locals[index as usize].name.clone(),
    }
}

/// Everything the C file is put together from.
struct Assembly<'a> {
    program: &'a Program,
    options: &'a Options,
    layout: &'a Layout,
    initial: &'a interp::State,
    local_names: &'a [String],
    generated: &'a handler::Generated,
    function: &'a str,
    draws: Draws,
    /// Folded into the RPC filter (`reshape::fold_min_payload`); 0 for none.
    min_payload: u64,
}

fn assemble(assembly: &Assembly<'_>) -> Result<String, Box<Diagnostic>> {
    let &Assembly {
        program,
        options,
        layout,
        initial,
        local_names,
        generated,
        function,
        draws,
        min_payload,
    } = assembly;
    let mut c = String::new();
    let _ = writeln!(
        c,
        "/* Generated by simplebpf {} from the policy `{}` (rules backend). Rebuild rather than edit. */",
        env!("CARGO_PKG_VERSION"),
        options.name
    );
    if options.test_hooks {
        c.push_str(
            "/* TEST BUILD: draws and time are read from sb_test_* globals. Never ship it. */\n",
        );
    }
    c.push_str(prelude::INCLUDES);
    c.push('\n');
    c.push_str("/* State (docs/language.md §4.3). */\n");
    let mut folded = Vec::new();
    for (var, decl) in program.state.iter().zip(&layout.vars) {
        match &decl.storage {
            Storage::Global(scalar) => {
                let value = &initial.vars[&var.name];
                let bytes = scalar.encode(value).map_err(|err| {
                    Box::new(
                        Diagnostic::new(Code::NoExactInteger, var.span, err.to_string())
                            .with_label("initial value"),
                    )
                })?;
                let raw = raw_value(scalar, &bytes);
                let init = if raw == "0" {
                    String::new()
                } else {
                    format!(" = {raw}")
                };
                let comment = match &scalar.scale {
                    Some(scale) => format!("float, stored as value × {scale}"),
                    None => var.ty.to_string(),
                };
                let _ = writeln!(
                    c,
                    "{} {}{init};\t/* {comment} */",
                    scalar.c_type(),
                    var.name
                );
                if let Some(scale) = &scalar.scale {
                    let _ = writeln!(
                        c,
                        "const volatile __s64 {} = {scale};",
                        scale_symbol(&var.name)
                    );
                }
            }
            Storage::HashMap { key, value, .. } => {
                let capacity = var
                    .capacity
                    .unwrap_or(simplebpf_dsl::ir::DEFAULT_MAP_CAPACITY);
                let _ = writeln!(
                    c,
                    "struct {{\n\t__uint(type, BPF_MAP_TYPE_HASH);\n\t__uint(max_entries, {capacity});\n\t__type(key, {});\n\t__type(value, {});\n}} {} SEC(\".maps\");\t/* {} */",
                    key.c_type(),
                    value.c_type(),
                    var.name,
                    var.ty
                );
                if let Some(scale) = &value.scale {
                    let _ = writeln!(
                        c,
                        "const volatile __s64 {} = {scale};",
                        scale_symbol(&var.name)
                    );
                }
            }
            Storage::RingBuf { element } => {
                let _ = writeln!(
                    c,
                    "struct {{\n\t__uint(type, BPF_MAP_TYPE_RINGBUF);\n\t__uint(max_entries, 256 * 1024);\n}} {} SEC(\".maps\");\t/* {}: one {} record per append */",
                    var.name,
                    var.ty,
                    element.c_type()
                );
                let _ = writeln!(
                    c,
                    "__u64 {};\t/* size({}) */",
                    len_symbol(&var.name),
                    var.name
                );
                if let Some(scale) = &element.scale {
                    let _ = writeln!(
                        c,
                        "const volatile __s64 {} = {scale};",
                        scale_symbol(&var.name)
                    );
                }
            }
            Storage::Folded(value) => folded.push(format!("{} = {value}", var.name)),
        }
    }
    if !folded.is_empty() {
        let _ = writeln!(
            c,
            "/* Never written after init, folded into the code: {}. */",
            folded.join(", ")
        );
    }
    c.push('\n');
    let lock_place = options.strategy.lock.unwrap_or_default();
    if layout.lock {
        c.push_str(match lock_place {
            strategy::LockPlace::ArrayMap => prelude::LOCK_MAP,
            strategy::LockPlace::GlobalData => prelude::LOCK_GLOBAL,
        });
        c.push('\n');
    }
    if options.test_hooks {
        c.push_str(prelude::TEST_HOOKS);
        c.push('\n');
    }
    c.push_str(&prelude::rpc_filter(
        options.port,
        options.strategy.filter,
        min_payload,
    ));
    c.push('\n');
    c.push_str(&prelude::helpers(generated.helpers));

    let _ = writeln!(c, "SEC(\"xdp\")\nint {function}(struct xdp_md *ctx)\n{{");
    c.push_str("\t__s64 payload_len;\n");
    let uses_now = analysis::reads_time(&program.req);
    for (index, local) in program.req.locals.iter().enumerate() {
        let name = &local_names[index];
        match &local.ty {
            ty if is_scalar(ty) => {
                let _ = writeln!(c, "\t{} {name} = 0;", layout::c_type(ty));
            }
            Type::Option(inner) if is_scalar(inner) => {
                let _ = writeln!(c, "\t__u8 {name}_some = 0;");
                let _ = writeln!(c, "\t{} {name} = 0;", layout::c_type(inner));
            }
            _ => {}
        }
    }
    c.push('\n');
    c.push_str("\tif (!sb_rpc_payload(ctx, &payload_len))\n\t\treturn XDP_PASS;\t/* not an RPC: untouched */\n");
    if uses_now {
        let clock = if options.test_hooks {
            "sb_test_now"
        } else {
            "bpf_ktime_get_ns()"
        };
        let _ = writeln!(
            c,
            "\t__u64 now = {clock};\t/* current_time(), once per request */"
        );
    }
    if layout.lock {
        if let Draws::Queue(n) = draws {
            let draw = if options.test_hooks {
                "sb_test_draw()"
            } else {
                "bpf_get_prandom_u32()"
            };
            for i in 0..n {
                let _ = writeln!(
                    c,
                    "\t__u32 sb_q{i} = {draw};\t/* drawn before the lock, used in order */"
                );
            }
        }
        let lock = match lock_place {
            strategy::LockPlace::ArrayMap => {
                c.push_str(
                    "\t__u32 sb_zero = 0;\n\tstruct sb_lock_cell *sb_cell = bpf_map_lookup_elem(&sb_lock, &sb_zero);\n\tint action;\n\n\tif (!sb_cell)\n\t\treturn XDP_PASS;\t/* a one-entry array always has entry 0 */\n",
                );
                "&sb_cell->lock"
            }
            strategy::LockPlace::GlobalData => {
                c.push_str("\tint action;\n\n");
                "&sb_lock"
            }
        };
        let _ = writeln!(c, "\tbpf_spin_lock({lock});");
        c.push_str(&generated.body);
        let _ = writeln!(
            c,
            "unlock:\n\tbpf_spin_unlock({lock});\n\treturn action;\n}}"
        );
    } else {
        c.push_str(&generated.body);
        c.push_str("}\n");
    }
    c.push_str("\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n");
    Ok(c)
}

fn raw_value(scalar: &Codec, bytes: &[u8]) -> String {
    match scalar.ty {
        Type::Bool => bytes[0].to_string(),
        Type::Int | Type::Float => {
            let v = i64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
            if v == 0 {
                "0".to_string()
            } else {
                format!("{v}")
            }
        }
        _ => {
            let v = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
            if v == 0 {
                "0".to_string()
            } else {
                format!("{v}ULL")
            }
        }
    }
}
