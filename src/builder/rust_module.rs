//! The Rust module a build script gets beside the object (`<name>.rs`): the proven object as
//! aligned bytes, the program's name, the port, the instruction counts, and the policy's
//! state as a typed struct. With `aya` on, functions that read that state from a loaded
//! `aya::Ebpf` and write `init`'s values into it, through the layout the contract read from
//! the object (docs/buildscript.md).
//!
//! The module is generated from the contract, never from a second idea of the layout: a
//! variable is read where `contract::read` found it, with its codec's width and scale.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::ToPrimitive;
use simplebpf_compiler::contract::{Contract, GlobalPlace, Place, VarPlace, stored_size};
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_dsl::interp::{self, InterpError, Value};
use simplebpf_dsl::ir::{Program, Type};

/// Instruction counts of one program, as the report gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insns {
    pub elf: usize,
    /// `None` when the kernel did not measure the program.
    pub xlated: Option<u32>,
    pub jited: Option<u32>,
}

/// Everything the module says, gathered by the builder.
#[derive(Debug)]
pub struct ModuleSpec<'a> {
    /// The policy's name: the module's and the outputs' stem.
    pub name: &'a str,
    /// The policy file as the build script named it, for the header.
    pub policy_path: &'a Path,
    /// The XDP program's name in the object.
    pub program_name: &'a str,
    pub port: u16,
    /// Where the object is, absolute: `include_bytes!` reads it from there.
    pub object_path: &'a Path,
    pub program: &'a Program,
    pub contract: &'a Contract,
    pub object: &'a BpfObject,
    pub before: Insns,
    pub after: Insns,
    /// Generate the functions over `aya::Ebpf`.
    pub aya: bool,
}

/// Why the module cannot be written for a program that was proven.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModuleError {
    #[error("the object's path {} is not UTF-8, so `include_bytes!` cannot name it", .0.display())]
    NonUtf8Path(PathBuf),
    #[error("the policy's init cannot run: {0}")]
    Init(InterpError),
    #[error(
        "the init value of `{name}` depends on the load time other than as `current_time()` plus a constant"
    )]
    TimeDependent { name: String },
    #[error("`{name}` is a {ty}: its keys have no ordered Rust type (floats)")]
    FloatKeys { name: String, ty: String },
    #[error("`{name}` starts at {value}, which an f64 cannot carry exactly at the scale {scale}")]
    Inexact {
        name: String,
        value: String,
        scale: String,
    },
    #[error("`{name}`: the object has no map `{map}`")]
    NoMap { name: String, map: String },
    #[error("`{name}`: the map `{map}` stores {actual} bytes where its type takes {expected}")]
    MapSize {
        name: String,
        map: String,
        actual: u32,
        expected: usize,
    },
}

/// A policy's name as a Rust module name: what is not a letter, digit or `_` becomes `_`.
pub(crate) fn module_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    field(&out)
}

/// A variable's name as a Rust field: keywords raw, the few that cannot be raw with `_`.
pub(super) fn field(name: &str) -> String {
    const NOT_RAW: [&str; 5] = ["self", "Self", "super", "crate", "_"];
    const KEYWORDS: [&str; 48] = [
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
        "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
        "override", "priv", "typeof", "unsized", "virtual", "yield",
    ];
    if NOT_RAW.contains(&name) {
        format!("{name}_")
    } else if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// The Rust type of a scalar the program stores.
fn scalar_type(ty: &Type) -> &'static str {
    match ty {
        Type::Int => "i64",
        Type::Bool => "bool",
        Type::Float => "f64",
        _ => "u64",
    }
}

fn rust_type(var: &VarPlace) -> Result<String, ModuleError> {
    Ok(match &var.ty {
        Type::Map(key, value) => {
            if **key == Type::Float {
                return Err(ModuleError::FloatKeys {
                    name: var.name.clone(),
                    ty: var.ty.to_string(),
                });
            }
            format!(
                "std::collections::BTreeMap<{}, {}>",
                scalar_type(key),
                scalar_type(value)
            )
        }
        // A vector's state is how many records it has appended.
        Type::Vec(_) => "u64".to_string(),
        ty => scalar_type(ty).to_string(),
    })
}

/// A value as a Rust expression of its field's type.
fn literal(var: &VarPlace, value: &Value) -> Result<String, ModuleError> {
    Ok(match value {
        Value::Int(v) if *v == i64::MIN => "i64::MIN".to_string(),
        Value::Int(v) => v.to_string(),
        Value::Uint(v) | Value::Instant(v) | Value::Vec(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::Float(v) => float_literal(var, v)?,
        Value::Map(entries) => {
            let mut out = String::from("std::collections::BTreeMap::from([");
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write!(out, "({}, {})", literal(var, key)?, literal(var, value)?)
                    .expect("a String takes writes");
            }
            out.push_str("])");
            out
        }
        other => other.to_string(),
    })
}

/// An f64 literal, refused when writing it back at the variable's scale would not give the
/// stored integer `init` means.
fn float_literal(var: &VarPlace, value: &BigRational) -> Result<String, ModuleError> {
    let as_f64 = value.to_f64().unwrap_or(f64::NAN);
    if let Some(scale) = &var.scale {
        let exact = value * BigRational::from_integer(scale.clone());
        let scale_f64 = scale.to_f64().unwrap_or(f64::NAN);
        let round_trip = (as_f64 * scale_f64).round();
        if !exact.is_integer() || exact.to_integer().to_f64() != Some(round_trip) {
            return Err(ModuleError::Inexact {
                name: var.name.clone(),
                value: Value::Float(value.clone()).to_string(),
                scale: scale.to_string(),
            });
        }
    }
    Ok(format!("{as_f64:?}"))
}

/// `init`'s value of each variable as a Rust expression of `load_time_ns`: a literal, or the
/// load time plus a constant for what `init` sets from `current_time()`.
fn init_expressions(spec: &ModuleSpec<'_>) -> Result<Vec<String>, ModuleError> {
    // The same two load times the contract compares (contract.rs): far apart, so that no
    // value depends on the time by accident of both.
    const LATER: u64 = 1_000_000_007_000_000_007;
    let at = |time| interp::load(spec.program, &[], time).map_err(ModuleError::Init);
    let (zero, later) = (at(0)?, at(LATER)?);
    let mut out = Vec::new();
    for var in &spec.contract.vars {
        let missing = Value::Bool(false);
        let first = zero.state.vars.get(&var.name).unwrap_or(&missing);
        let second = later.state.vars.get(&var.name).unwrap_or(&missing);
        if first == second {
            out.push(literal(var, first)?);
            continue;
        }
        let expression = match (first, second) {
            (Value::Instant(0), Value::Instant(LATER)) | (Value::Uint(0), Value::Uint(LATER)) => {
                "load_time_ns".to_string()
            }
            (Value::Instant(a), Value::Instant(b)) | (Value::Uint(a), Value::Uint(b))
                if b.wrapping_sub(*a) == LATER =>
            {
                format!("load_time_ns.wrapping_add({a})")
            }
            (Value::Int(a), Value::Int(b)) if (*b as u64).wrapping_sub(*a as u64) == LATER => {
                format!("(load_time_ns as i64).wrapping_add({a})")
            }
            _ => {
                return Err(ModuleError::TimeDependent {
                    name: var.name.clone(),
                });
            }
        };
        out.push(expression);
    }
    Ok(out)
}

fn insns_const(name: &str, doc: &str, insns: Insns) -> String {
    let option = |v: Option<u32>| match v {
        Some(v) => format!("Some({v})"),
        None => "None".to_string(),
    };
    format!(
        "    /// {doc}\n    pub const {name}: Insns = Insns {{\n        elf: {},\n        xlated: {},\n        jited: {},\n    }};\n",
        insns.elf,
        option(insns.xlated),
        option(insns.jited)
    )
}

/// How every generated module begins.
const HEADER: &str = "// Generated by simplebpf ";

/// Whether the file at `path` is a module simplebpf generated (it begins with its header).
pub fn is_generated(path: &Path) -> bool {
    let mut start = [0u8; HEADER.len()];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut start))
        .is_ok_and(|()| start == HEADER.as_bytes())
}

/// The module's text.
pub fn render(spec: &ModuleSpec<'_>) -> Result<String, ModuleError> {
    let object_path = spec
        .object_path
        .to_str()
        .ok_or_else(|| ModuleError::NonUtf8Path(spec.object_path.to_path_buf()))?;
    let init = init_expressions(spec)?;
    let mut fields = Vec::new();
    for var in &spec.contract.vars {
        fields.push(rust_type(var)?);
    }
    let mut out = String::new();
    let w = &mut out;
    let uses_time = init.iter().any(|e| e.contains("load_time_ns"));
    writeln!(
        w,
        "{HEADER}{} from {} (port {}). Rebuilt by the build script; do not edit.",
        env!("CARGO_PKG_VERSION"),
        spec.policy_path.display(),
        spec.port
    )
    .expect("a String takes writes");
    let name = module_name(spec.name);
    write!(
        w,
        r#"
/// The policy `{policy}` compiled by simplebpf: a BPF object the checker proved equivalent to
/// the policy{verified}.
#[allow(dead_code)]
pub mod {name} {{
    /// The proven object's bytes, 8-byte aligned (aya parses it in place).
    pub const OBJECT: &[u8] = &ALIGNED.0;

    #[repr(C, align(8))]
    struct Aligned<Bytes: ?Sized>(Bytes);

    const ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!({object_path:?}));

    /// The XDP program's name in the object.
    pub const PROGRAM: &str = {program:?};

    /// The UDP port whose datagrams are the policy's RPCs.
    pub const PORT: u16 = {port};

    /// Instructions of the XDP program: in the object, after the verifier's rewrites, and
    /// x86 instructions after the JIT (`None`: the kernel did not measure it).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Insns {{
        pub elf: u32,
        pub xlated: Option<u32>,
        pub jited: Option<u32>,
    }}

"#,
        policy = spec.name,
        verified = if spec.after.jited.is_some() {
            ", accepted and measured by the kernel"
        } else {
            ""
        },
        program = spec.program_name,
        port = spec.port,
    )
    .expect("a String takes writes");
    out.push_str(&insns_const(
        "INSNS_BEFORE",
        "The rules backend's first program, before the optimizer.",
        spec.before,
    ));
    out.push('\n');
    out.push_str(&insns_const(
        "INSNS_AFTER",
        "The program in `OBJECT`.",
        spec.after,
    ));
    out.push_str(
        "\n    /// The policy's state in its own types (floats with their fixed-point scale \
         applied,\n    /// `Instant`s in `CLOCK_MONOTONIC` nanoseconds, a vector as the number \
         of records it has\n    /// appended).\n    #[derive(Debug, Clone, PartialEq)]\n    \
         pub struct State {\n",
    );
    for (var, ty) in spec.contract.vars.iter().zip(&fields) {
        writeln!(out, "        /// `{}`: {}.", var.ty, describe_place(var)).expect("writes");
        writeln!(out, "        pub {}: {ty},", field(&var.name)).expect("writes");
    }
    out.push_str("    }\n\n    impl State {\n");
    writeln!(
        out,
        "        /// The state `init` leaves for a program loaded at `load_time_ns` \
         (`CLOCK_MONOTONIC`,\n        /// what `bpf_ktime_get_ns` reads){}.\n        \
         pub fn init({}load_time_ns: u64) -> State {{\n            State {{",
        if uses_time {
            ""
        } else {
            "; this policy's init does not read it"
        },
        if uses_time { "" } else { "_" },
    )
    .expect("writes");
    for (var, expression) in spec.contract.vars.iter().zip(&init) {
        writeln!(out, "                {}: {expression},", field(&var.name)).expect("writes");
    }
    out.push_str("            }\n        }\n    }\n\n");
    render_display(&mut out, spec);
    if spec.aya {
        super::rust_aya::render(&mut out, spec)?;
    }
    out.push_str("}\n");
    Ok(out)
}

fn describe_place(var: &VarPlace) -> String {
    let scale = var
        .scale
        .as_ref()
        .map(|s| format!(", stored × {s}"))
        .unwrap_or_default();
    match &var.place {
        Place::Global(GlobalPlace { section, .. }) => format!("a global in `{section}`{scale}"),
        Place::Constant(value) => format!("never written after init, a constant ({value})"),
        Place::HashMap { map } => format!("the hash map `{map}`{scale}"),
        Place::RingBuf { map, .. } => format!("records in the ring buffer `{map}`{scale}"),
    }
}

/// `req_count 1200, drop_count 61`: the variables the program writes, as the policy names
/// them.
fn render_display(out: &mut String, spec: &ModuleSpec<'_>) {
    let written: Vec<&VarPlace> = spec
        .contract
        .vars
        .iter()
        .filter(|var| !matches!(var.place, Place::Constant(_)))
        .collect();
    out.push_str(
        "    /// The variables the program writes, as the policy names them: `name value, ...`.\n    impl std::fmt::Display for State {\n        \
         fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n",
    );
    if written.is_empty() {
        out.push_str("            f.write_str(\"(no state)\")\n");
    } else {
        let format: Vec<String> = written
            .iter()
            .map(|var| match var.ty {
                Type::Map(..) => format!("{} {{:?}}", var.name),
                _ => format!("{} {{}}", var.name),
            })
            .collect();
        let args: Vec<String> = written
            .iter()
            .map(|var| format!("self.{}", field(&var.name)))
            .collect();
        writeln!(
            out,
            "            write!(\n                f,\n                {:?},\n                {}\n            )",
            format.join(", "),
            args.join(",\n                ")
        )
        .expect("writes");
    }
    out.push_str("        }\n    }\n");
}

/// Global-data sections that hold state, in order, with their sizes.
pub(super) fn sections(spec: &ModuleSpec<'_>) -> Vec<(String, u32)> {
    let names: BTreeSet<&str> = spec
        .contract
        .vars
        .iter()
        .filter_map(|var| var.global())
        .map(|global| global.section.as_str())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let size = spec.object.map(name).map_or(0, |map| map.value_size);
            (name.to_string(), size)
        })
        .collect()
}

/// A map variable's key and value sizes in the object, checked against its type.
pub(super) fn map_sizes(
    spec: &ModuleSpec<'_>,
    var: &VarPlace,
    map: &str,
) -> Result<(u32, u32), ModuleError> {
    let model = spec.object.map(map).ok_or_else(|| ModuleError::NoMap {
        name: var.name.clone(),
        map: map.to_string(),
    })?;
    if let Type::Map(key, value) = &var.ty {
        for (actual, ty) in [(model.key_size, key), (model.value_size, value)] {
            let expected = stored_size(ty);
            if actual as usize != expected {
                return Err(ModuleError::MapSize {
                    name: var.name.clone(),
                    map: map.to_string(),
                    actual,
                    expected,
                });
            }
        }
    }
    Ok((model.key_size, model.value_size))
}

/// The scale of a float as an f64 literal.
pub(super) fn scale_literal(scale: Option<&BigInt>) -> String {
    format!(
        "{:?}",
        scale.and_then(ToPrimitive::to_f64).unwrap_or(1.0_f64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_rust_identifiers() {
        assert_eq!(field("req_count"), "req_count");
        assert_eq!(field("type"), "r#type");
        assert_eq!(field("gen"), "r#gen");
        assert_eq!(field("self"), "self_");
        assert_eq!(module_name("logging_fault"), "logging_fault");
        assert_eq!(module_name("my-policy.v2"), "my_policy_v2");
        assert_eq!(module_name("9lives"), "_9lives");
        assert_eq!(module_name("match"), "r#match");
    }
}
