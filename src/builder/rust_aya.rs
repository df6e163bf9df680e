//! The part of the generated module that works on a loaded `aya::Ebpf` (`Builder::aya`):
//! `State::read`, `State::write` and `write_init`. Global-data sections are one-element
//! array maps named after the section (how aya loads them); hash maps by their name. Every
//! value goes through the bytes the contract says: little endian, 8 bytes (a `bool` 1), a
//! float as its value × scale.

use std::fmt::Write as _;

use simplebpf_compiler::contract::{GlobalPlace, Place, VarPlace};
use simplebpf_dsl::ir::Type;

use super::rust_module::{ModuleError, ModuleSpec, map_sizes, scale_literal, sections};

/// Decodes the bytes `bytes` (an expression of type `[u8; size]` or a slice index) of a
/// scalar of type `ty`.
fn decode(ty: &Type, bytes: &str, scale: &str) -> String {
    match ty {
        Type::Bool => format!("{bytes}[0] != 0"),
        Type::Int => format!("i64::from_le_bytes({bytes})"),
        Type::Float => format!("i64::from_le_bytes({bytes}) as f64 / {scale}"),
        _ => format!("u64::from_le_bytes({bytes})"),
    }
}

/// Encodes `value` (an expression of the scalar's Rust type) as its stored bytes.
fn encode(ty: &Type, value: &str, scale: &str) -> String {
    match ty {
        Type::Bool => format!("[u8::from({value})]"),
        Type::Float => format!("encode_float({value}, {scale}).to_le_bytes()"),
        _ => format!("{value}.to_le_bytes()"),
    }
}

/// The type a global stores: the variable's own, or a vector's `u64` length.
fn stored_type(var: &VarPlace) -> Type {
    match &var.ty {
        Type::Vec(_) => Type::Uint,
        ty => ty.clone(),
    }
}

fn section_var(index: usize) -> String {
    format!("section_{index}")
}

/// Appends the aya functions and their helpers inside the module.
pub(super) fn render(out: &mut String, spec: &ModuleSpec<'_>) -> Result<(), ModuleError> {
    let sections = sections(spec);
    let section_index = |global: &GlobalPlace| {
        sections
            .iter()
            .position(|(name, _)| *name == global.section)
            .expect("every global's section is listed")
    };
    let mut read_fields = String::new();
    let mut writes = String::new();
    let mut uses_maps = false;
    let mut uses_floats = false;
    for var in &spec.contract.vars {
        let field = super::rust_module::field(&var.name);
        let scale = scale_literal(var.scale.as_ref());
        let expression = match &var.place {
            Place::Constant(_) => format!("State::init(0).{field}"),
            Place::Global(global) | Place::RingBuf { len: global, .. } => {
                let ty = stored_type(var);
                let at = global.offset;
                let slot = format!(
                    "{}[{at}..{}]",
                    section_var(section_index(global)),
                    at + u64::from(global.size)
                );
                uses_floats |= ty == Type::Float;
                writeln!(
                    writes,
                    "            {slot}.copy_from_slice(&{});",
                    encode(&ty, &format!("self.{field}"), &scale)
                )
                .expect("writes");
                let bytes = if ty == Type::Bool {
                    slot
                } else {
                    format!("word(&{slot})")
                };
                decode(&ty, &bytes, &scale)
            }
            Place::HashMap { map } => {
                uses_maps = true;
                let (key_size, value_size) = map_sizes(spec, var, map)?;
                let Type::Map(key, value) = &var.ty else {
                    unreachable!("the contract puts only maps in hash maps")
                };
                uses_floats |= **value == Type::Float;
                writeln!(
                    writes,
                    "            for (&key, &value) in &self.{field} {{\n                \
                     insert::<{key_size}, {value_size}>(ebpf, {map:?}, {}, {})?;\n            }}",
                    encode(key, "key", &scale),
                    encode(value, "value", &scale)
                )
                .expect("writes");
                format!(
                    "entries::<{key_size}, {value_size}>(ebpf, {map:?})?\n                    \
                     .into_iter()\n                    .map(|(key, value)| ({}, {}))\n                    \
                     .collect()",
                    decode(key, "key", &scale),
                    decode(value, "value", &scale)
                )
            }
        };
        writeln!(read_fields, "                {field}: {expression},").expect("writes");
    }
    let mut read_sections = String::new();
    let mut write_sections = String::new();
    let mut write_backs = String::new();
    for (index, (name, size)) in sections.iter().enumerate() {
        let var = section_var(index);
        writeln!(
            read_sections,
            "            let {var} = section::<{size}>(ebpf, {name:?})?;"
        )
        .expect("writes");
        writeln!(
            write_sections,
            "            let mut {var} = section::<{size}>(ebpf, {name:?})?;"
        )
        .expect("writes");
        writeln!(
            write_backs,
            "            write_section::<{size}>(ebpf, {name:?}, {var})?;"
        )
        .expect("writes");
    }
    // A policy whose every variable is a constant reads and writes nothing.
    if writes.is_empty() {
        writes.push_str("            let _ = (self, ebpf);\n");
    }
    if read_sections.is_empty() && !uses_maps {
        read_sections.push_str("            let _ = ebpf;\n");
    }
    write!(
        out,
        r#"
    /// Why the state of a loaded program could not be read or written.
    #[derive(Debug)]
    pub enum StateError {{
        /// The loaded object has no map of this name (another object was loaded?).
        NoMap(&'static str),
        Map {{
            map: &'static str,
            error: aya::maps::MapError,
        }},
    }}

    impl std::fmt::Display for StateError {{
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{
            match self {{
                StateError::NoMap(map) => write!(f, "the loaded program has no map `{{map}}`"),
                StateError::Map {{ map, error }} => write!(f, "the map `{{map}}`: {{error}}"),
            }}
        }}
    }}

    impl std::error::Error for StateError {{
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {{
            match self {{
                StateError::NoMap(_) => None,
                StateError::Map {{ error, .. }} => Some(error),
            }}
        }}
    }}

    impl State {{
        /// The state of the program loaded in `ebpf`, read map by map: a snapshot, not an
        /// atomic one while packets flow.
        pub fn read(ebpf: &aya::Ebpf) -> Result<State, StateError> {{
{read_sections}            Ok(State {{
{read_fields}            }})
        }}

        /// Writes the state into the program loaded in `ebpf`: every global, and every entry
        /// of a map (entries not in `self` stay). Meant for before the program is attached:
        /// a global-data section is read, patched and written back whole. Constants are
        /// folded into the program and not written.
        pub fn write(&self, ebpf: &mut aya::Ebpf) -> Result<(), StateError> {{
{write_sections}{writes}{write_backs}            Ok(())
        }}
    }}

    /// Runs the policy's `init` for the program loaded in `ebpf`: writes the values it sets,
    /// with `load_time_ns` for `current_time()`.
    pub fn write_init(ebpf: &mut aya::Ebpf, load_time_ns: u64) -> Result<(), StateError> {{
        State::init(load_time_ns).write(ebpf)
    }}
"#,
    )
    .expect("writes");
    if !sections.is_empty() || uses_maps {
        out.push_str(
            r#"
    fn map_error(map: &'static str) -> impl Fn(aya::maps::MapError) -> StateError {
        move |error| StateError::Map { map, error }
    }
"#,
        );
    }
    if !sections.is_empty() {
        out.push_str(
            r#"
    fn section<const N: usize>(ebpf: &aya::Ebpf, name: &'static str) -> Result<[u8; N], StateError> {
        let map = ebpf.map(name).ok_or(StateError::NoMap(name))?;
        let array = aya::maps::Array::<_, [u8; N]>::try_from(map).map_err(map_error(name))?;
        array.get(&0, 0).map_err(map_error(name))
    }

    fn write_section<const N: usize>(
        ebpf: &mut aya::Ebpf,
        name: &'static str,
        bytes: [u8; N],
    ) -> Result<(), StateError> {
        let map = ebpf.map_mut(name).ok_or(StateError::NoMap(name))?;
        let mut array = aya::maps::Array::<_, [u8; N]>::try_from(map).map_err(map_error(name))?;
        array.set(0, bytes, 0).map_err(map_error(name))
    }

    fn word(bytes: &[u8]) -> [u8; 8] {
        let mut word = [0; 8];
        word.copy_from_slice(bytes);
        word
    }
"#,
        );
    }
    if uses_maps {
        out.push_str(
            r#"
    type Entries<const K: usize, const V: usize> = Vec<([u8; K], [u8; V])>;

    fn entries<const K: usize, const V: usize>(
        ebpf: &aya::Ebpf,
        name: &'static str,
    ) -> Result<Entries<K, V>, StateError> {
        let map = ebpf.map(name).ok_or(StateError::NoMap(name))?;
        let map = aya::maps::HashMap::<_, [u8; K], [u8; V]>::try_from(map).map_err(map_error(name))?;
        map.iter().collect::<Result<_, _>>().map_err(map_error(name))
    }

    fn insert<const K: usize, const V: usize>(
        ebpf: &mut aya::Ebpf,
        name: &'static str,
        key: [u8; K],
        value: [u8; V],
    ) -> Result<(), StateError> {
        let map = ebpf.map_mut(name).ok_or(StateError::NoMap(name))?;
        let mut map =
            aya::maps::HashMap::<_, [u8; K], [u8; V]>::try_from(map).map_err(map_error(name))?;
        map.insert(key, value, 0).map_err(map_error(name))
    }
"#,
        );
    }
    if uses_floats {
        out.push_str(
            r#"
    /// A float as the program stores it: value × scale, to the nearest integer.
    fn encode_float(value: f64, scale: f64) -> i64 {
        (value * scale).round() as i64
    }
"#,
        );
    }
    Ok(())
}
