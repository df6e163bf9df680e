//! The BPF program model (ARCHITECTURE.md "Contracts"): what an ELF object holds, read with
//! aya-obj. Instructions keep a wide `lddw` as one instruction of two slots, with the map or
//! global it loads resolved by name; maps and global-data sections carry their sizes; each
//! global has its section and offset. The checker reads only this, so it can check any object.

mod btf;
pub mod flow;
mod helper;
pub mod insn;
pub mod listing;

use std::collections::{BTreeMap, HashSet};

use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

pub use btf::{BtfFacts, GlobalFacts};
pub use helper::Helper;
pub use insn::{Insn, Target};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("not a BPF ELF object: {0}")]
    Parse(String),
    #[error("the object's relocations cannot be resolved: {0}")]
    Relocation(String),
    #[error("the program's instructions cannot be rewritten in the file: {0}")]
    Patch(String),
    #[error("the object has no XDP program{}", list_others(others))]
    NoXdpProgram { others: Vec<String> },
    #[error("the object has several XDP programs ({}); name one with --prog", names.join(", "))]
    SeveralXdpPrograms { names: Vec<String> },
    #[error("the object has no XDP program named `{name}` (it has {})", available.join(", "))]
    NoSuchProgram {
        name: String,
        available: Vec<String>,
    },
}

fn list_others(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        format!(" (it has {}: not XDP)", others.join(", "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    Hash,
    Array,
    RingBuf,
    /// A libbpf global-data section (`.bss`, `.data`, `.rodata`, `.data.*`, ...).
    GlobalData,
    Other(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapModel {
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Initial contents of a global-data section (zeros for `.bss`).
    pub initial: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub name: String,
    pub section: String,
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramModel {
    pub name: String,
    /// The program's kind as aya reads its section name (for messages).
    pub section: String,
    /// Whether it is an XDP program (`SEC("xdp")`, `SEC("xdp.frags")`, ...).
    pub xdp: bool,
    pub insns: Vec<Insn>,
    /// Where the program's first instruction is in the ELF file: instruction slot `k` is at
    /// `file_offset + 8·k` (subprograms linked after it are elsewhere). Tools that patch an
    /// instruction for a replay use it.
    pub file_offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfObject {
    pub programs: Vec<ProgramModel>,
    pub maps: Vec<MapModel>,
    pub globals: Vec<Global>,
    /// What the object's BTF says about its globals and maps, when it has readable BTF.
    pub btf: Option<BtfFacts>,
}

const SENTINEL_FD_BASE: i32 = 10_000;

impl BpfObject {
    pub fn parse(elf: &[u8]) -> Result<BpfObject, ObjectError> {
        let mut obj =
            aya_obj::Object::parse(elf).map_err(|err| ObjectError::Parse(err.to_string()))?;
        let mut names: Vec<String> = obj.maps.keys().cloned().collect();
        names.sort();
        let by_fd: BTreeMap<i32, String> = names
            .iter()
            .enumerate()
            .map(|(index, name)| (SENTINEL_FD_BASE + index as i32, name.clone()))
            .collect();
        let text_sections: HashSet<usize> =
            obj.functions.keys().map(|(section, _)| *section).collect();
        let maps_copy = obj.maps.clone();
        // Sentinel descriptors stand in for real maps: afterwards each `lddw`'s immediate says
        // which map it names.
        obj.relocate_maps(
            by_fd
                .iter()
                .map(|(fd, name)| (name.as_str(), *fd, &maps_copy[name])),
            &text_sections,
        )
        .map_err(|err| ObjectError::Relocation(err.to_string()))?;
        obj.relocate_calls(&text_sections)
            .map_err(|err| ObjectError::Relocation(err.to_string()))?;

        let mut programs = Vec::new();
        let mut program_names: Vec<&String> = obj.programs.keys().collect();
        program_names.sort();
        for name in program_names {
            let program = &obj.programs[name];
            let Some(function) = obj.functions.get(&program.function_key()) else {
                continue;
            };
            programs.push(ProgramModel {
                name: name.clone(),
                section: format!("{:?}", program.section),
                xdp: matches!(program.section, aya_obj::ProgramSection::Xdp { .. }),
                insns: decode(&function.instructions, &by_fd),
                file_offset: file_offset(elf, function.section_index.0, function.section_offset),
            });
        }

        let maps = names
            .iter()
            .map(|name| {
                let map = &obj.maps[name];
                let kind = match map.section_kind() {
                    aya_obj::EbpfSectionKind::Bss
                    | aya_obj::EbpfSectionKind::Data
                    | aya_obj::EbpfSectionKind::Rodata => MapKind::GlobalData,
                    _ => match map.map_type() {
                        1 => MapKind::Hash,
                        2 => MapKind::Array,
                        27 => MapKind::RingBuf,
                        other => MapKind::Other(other),
                    },
                };
                MapModel {
                    name: name.clone(),
                    kind,
                    key_size: map.key_size(),
                    value_size: map.value_size(),
                    max_entries: map.max_entries(),
                    initial: map.data().to_vec(),
                }
            })
            .collect();

        Ok(BpfObject {
            programs,
            maps,
            globals: globals(elf)?,
            btf: btf_section(elf).and_then(|bytes| btf::read(&bytes)),
        })
    }

    /// The XDP program named `name`, or the only one when no name is given; an object with
    /// several is refused rather than one picked.
    pub fn xdp_program(&self, name: Option<&str>) -> Result<&ProgramModel, ObjectError> {
        let chosen = choose_xdp(name, self.programs.iter().map(|p| (p.name.as_str(), p.xdp)))?;
        Ok(self
            .programs
            .iter()
            .find(|p| p.name == chosen)
            .expect("chosen among these"))
    }

    pub fn global(&self, name: &str) -> Option<&Global> {
        self.globals.iter().find(|global| global.name == name)
    }

    pub fn map(&self, name: &str) -> Option<&MapModel> {
        self.maps.iter().find(|map| map.name == name)
    }
}

impl ProgramModel {
    /// The 8-byte slot where instruction `index` starts (`lddw` takes two).
    pub fn slot_of(&self, index: usize) -> usize {
        self.insns[..index]
            .iter()
            .map(|insn| usize::from(insn.slots))
            .sum()
    }

    /// The ELF bytes `elf` (whose program this is) with the program's instructions replaced
    /// by `insns`, one for one. Only one-slot instructions may change: a wide load carries a
    /// relocation, and its bytes here are already relocated.
    pub fn patched(&self, elf: &[u8], insns: &[Insn]) -> Result<Vec<u8>, ObjectError> {
        let base = self.file_offset.ok_or_else(|| {
            ObjectError::Patch("the program's place in the file is unknown".into())
        })?;
        if insns.len() != self.insns.len() {
            return Err(ObjectError::Patch(format!(
                "{} instructions for a program of {}",
                insns.len(),
                self.insns.len()
            )));
        }
        let mut out = elf.to_vec();
        for (index, (old, new)) in self.insns.iter().zip(insns).enumerate() {
            if old == new {
                continue;
            }
            if old.slots != 1 || new.slots != 1 {
                return Err(ObjectError::Patch(format!(
                    "instruction {index} is or becomes a wide load"
                )));
            }
            let at = base as usize + insn::SLOT * self.slot_of(index);
            let slot = out.get_mut(at..at + insn::SLOT).ok_or_else(|| {
                ObjectError::Patch(format!("instruction {index} is outside the file"))
            })?;
            slot.copy_from_slice(&new.encode());
        }
        Ok(out)
    }

    /// Instructions as the ELF holds them: `lddw` once, `ja +0` not at all.
    pub fn elf_instruction_count(&self) -> usize {
        self.insns.iter().filter(|insn| !insn.is_nop_jump()).count()
    }
}

/// Which XDP program of `(name, is_xdp)` pairs to use: the one named, or the only one. The
/// object model and the kernel loader choose the same way.
pub fn choose_xdp<'a>(
    name: Option<&str>,
    programs: impl Iterator<Item = (&'a str, bool)>,
) -> Result<String, ObjectError> {
    let (xdp, others): (Vec<_>, Vec<_>) = programs.partition(|(_, is_xdp)| *is_xdp);
    let xdp: Vec<String> = xdp.into_iter().map(|(n, _)| n.to_string()).collect();
    match (name, xdp.as_slice()) {
        (Some(name), _) if xdp.iter().any(|n| n == name) => Ok(name.to_string()),
        (Some(name), _) => Err(ObjectError::NoSuchProgram {
            name: name.to_string(),
            available: xdp,
        }),
        (None, [one]) => Ok(one.clone()),
        (None, []) => Err(ObjectError::NoXdpProgram {
            others: others.into_iter().map(|(n, _)| n.to_string()).collect(),
        }),
        (None, _) => Err(ObjectError::SeveralXdpPrograms { names: xdp }),
    }
}

/// The typed instructions of a relocated function, each wide load naming the map or global
/// its sentinel descriptor stands for.
fn decode(raw: &[aya_obj::generated::bpf_insn], by_fd: &BTreeMap<i32, String>) -> Vec<Insn> {
    let bytes: Vec<u8> = raw
        .iter()
        .flat_map(|insn| {
            let mut slot = vec![insn.code, (insn.src_reg() << 4) | insn.dst_reg()];
            slot.extend_from_slice(&insn.off.to_le_bytes());
            slot.extend_from_slice(&insn.imm.to_le_bytes());
            slot
        })
        .collect();
    let mut insns = insn::decode(&bytes);
    for insn in &mut insns {
        if !insn.is_lddw() || insn.slots != 2 {
            continue;
        }
        insn.target = match (insn.src, by_fd.get(&insn.imm).cloned()) {
            (insn::PSEUDO_MAP_FD, Some(map)) => Some(Target::Map(map)),
            (insn::PSEUDO_MAP_VALUE, Some(map)) => Some(Target::Value {
                map,
                offset: insn.imm_hi as u32,
            }),
            _ => None,
        };
    }
    insns
}

/// The name and bytes of every code section of an ELF object (each program's and each
/// subprogram's instructions as the file holds them, before relocation).
pub fn code_sections(elf: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ObjectError> {
    let file = object::File::parse(elf).map_err(|err| ObjectError::Parse(err.to_string()))?;
    Ok(file
        .sections()
        .filter(|section| section.kind() == object::SectionKind::Text)
        .filter_map(|section| {
            let name = section.name().ok()?.to_string();
            Some((name, section.data().ok()?.to_vec()))
        })
        .collect())
}

/// The bytes of the `.BTF` section, if there is one.
fn btf_section(elf: &[u8]) -> Option<Vec<u8>> {
    let file = object::File::parse(elf).ok()?;
    let section = file.section_by_name(".BTF")?;
    section.data().ok().map(<[u8]>::to_vec)
}

fn file_offset(elf: &[u8], section: usize, offset: usize) -> Option<u64> {
    let file = object::File::parse(elf).ok()?;
    let section = file.section_by_index(object::SectionIndex(section)).ok()?;
    let (start, _) = section.file_range()?;
    Some(start + offset as u64)
}

/// Every global variable in a data section, from the ELF symbol table (the offsets BTF's
/// DATASEC records are fixed up from these same symbols).
fn globals(elf: &[u8]) -> Result<Vec<Global>, ObjectError> {
    let file = object::File::parse(elf).map_err(|err| ObjectError::Parse(err.to_string()))?;
    let mut globals = Vec::new();
    for symbol in file.symbols() {
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let Ok(section_name) = section.name() else {
            continue;
        };
        let is_data = [".bss", ".data", ".rodata"].iter().any(|prefix| {
            section_name == *prefix || section_name.starts_with(&format!("{prefix}."))
        });
        if !is_data || symbol.kind() != object::SymbolKind::Data {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        globals.push(Global {
            name: name.to_string(),
            section: section_name.to_string(),
            offset: symbol.address() as u32,
            size: symbol.size() as u32,
        });
    }
    globals.sort_by(|a, b| (&a.section, a.offset).cmp(&(&b.section, b.offset)));
    Ok(globals)
}
