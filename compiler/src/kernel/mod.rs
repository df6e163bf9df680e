//! Everything that needs the running kernel, behind one small surface: load an XDP object
//! (libbpf creates its maps and global-data sections with their BTF), get the verifier's verdict and log, read
//! the translated and JIT-compiled sizes, count x86 instructions in the JIT image, run
//! `BPF_PROG_TEST_RUN`, and read or write globals and map entries.

mod libbpf;
mod sys;

pub use sys::monotonic_ns;

use std::io;
use std::os::fd::BorrowedFd;

use crate::object_model::choose_xdp;

/// Set to `1` to turn a missing kernel capability into an error instead of a skipped step.
pub const REQUIRE_KERNEL_ENV: &str = "SIMPLEBPF_REQUIRE_KERNEL";

/// Raw (key, value) bytes of map entries.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("the kernel verifier rejected the program")]
    Rejected { log: String },
    #[error(
        "not allowed to load BPF programs here ({0}); run as root or with CAP_BPF and CAP_NET_ADMIN"
    )]
    NotPermitted(String),
    #[error(transparent)]
    Program(#[from] crate::object_model::ObjectError),
    #[error("could not load the object: {0}")]
    Load(String),
    #[error("no map or global-data section named `{0}` in the loaded object")]
    NoSuchMap(String),
    #[error("{what}: {error}")]
    Syscall {
        what: &'static str,
        error: io::Error,
    },
}

/// Whether `SIMPLEBPF_REQUIRE_KERNEL=1` asks for a missing capability to be an error.
pub fn kernel_required() -> bool {
    std::env::var(REQUIRE_KERNEL_ENV).is_ok_and(|value| value == "1")
}

impl KernelError {
    /// True when the failure says the machine cannot load programs at all, as opposed to
    /// this program being wrong.
    pub fn is_missing_capability(&self) -> bool {
        matches!(self, KernelError::NotPermitted(_))
    }
}

/// Sizes the kernel reports for a loaded program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Instructions after the verifier's rewrites (`xlated_prog_len / 8`).
    pub xlated_insns: u32,
    pub xlated_bytes: u32,
    /// x86-64 instructions in the JIT image, decoded.
    pub jited_insns: u32,
    pub jited_bytes: u32,
    /// Instructions the verifier processed while proving the program safe.
    pub verified_insns: u32,
}

/// What `LoadedProgram::measure` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub sizes: Measurement,
    pub jit_image: Vec<u8>,
}

/// A program the verifier accepted, with its maps, alive until dropped.
#[derive(Debug)]
pub struct LoadedProgram {
    object: libbpf::Object,
    program: String,
}

impl LoadedProgram {
    /// Loads the XDP program `name` of an ELF object (the only one when `None`), creating
    /// its maps and global-data sections with the object's initial contents and BTF, as
    /// libbpf-based loaders do.
    pub fn load(elf: &[u8], name: Option<&str>) -> Result<LoadedProgram, KernelError> {
        let opened = libbpf::Object::open(elf)
            .map_err(|err| KernelError::Load(format!("libbpf cannot open the object: {err}")))?;
        let program = choose_xdp(
            name,
            opened
                .programs()
                .iter()
                .map(|(name, xdp, _)| (name.as_str(), *xdp)),
        )?;
        drop(opened);
        let object = libbpf::Object::load(elf, &program).map_err(|failure| {
            let missing_capability =
                failure.error.raw_os_error() == Some(libc::EPERM) && failure.log.trim().is_empty();
            if missing_capability {
                KernelError::NotPermitted(failure.error.to_string())
            } else if !failure.log.trim().is_empty() {
                KernelError::Rejected { log: failure.log }
            } else {
                KernelError::Load(failure.error.to_string())
            }
        })?;
        Ok(LoadedProgram { object, program })
    }

    /// The name of the XDP function in the object.
    pub fn program_name(&self) -> &str {
        &self.program
    }

    fn prog_fd(&self) -> Result<BorrowedFd<'_>, KernelError> {
        self.object
            .program_fd(&self.program)
            .ok_or_else(|| KernelError::Load(format!("program `{}` is not loaded", self.program)))
    }

    /// The kernel's counts, and the x86-64 code the JIT made (`x86_listing` shows it), from
    /// one read of the program's info.
    pub fn measure(&self) -> Result<Measured, KernelError> {
        let info = sys::prog_info(self.prog_fd()?).map_err(|error| KernelError::Syscall {
            what: "reading the program's info",
            error,
        })?;
        Ok(Measured {
            sizes: Measurement {
                xlated_insns: info.xlated_prog_len / 8,
                xlated_bytes: info.xlated_prog_len,
                jited_insns: count_x86_instructions(&info.jited_image),
                jited_bytes: info.jited_prog_len,
                verified_insns: info.verified_insns,
            },
            jit_image: info.jited_image,
        })
    }

    /// Runs the program once per repetition on `packet`: (XDP action, mean ns per run).
    pub fn test_run(&self, packet: &[u8], repeat: u32) -> Result<(u32, u32), KernelError> {
        sys::test_run(self.prog_fd()?, packet, repeat).map_err(|error| KernelError::Syscall {
            what: "BPF_PROG_TEST_RUN",
            error,
        })
    }

    /// The median over `runs` of the mean ns/packet of `repeat` runs each.
    pub fn ns_per_packet(
        &self,
        packet: &[u8],
        repeat: u32,
        runs: usize,
    ) -> Result<f64, KernelError> {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            samples.push(self.test_run(packet, repeat)?.1);
        }
        samples.sort_unstable();
        let middle = samples.len() / 2;
        Ok(if samples.len() % 2 == 1 {
            f64::from(samples[middle])
        } else {
            (f64::from(samples[middle - 1]) + f64::from(samples[middle])) / 2.0
        })
    }

    fn map(&self, name: &str) -> Result<libbpf::MapHandle<'_>, KernelError> {
        self.object
            .map(name)
            .ok_or_else(|| KernelError::NoSuchMap(name.to_string()))
    }

    /// The bytes of a global-data section (`.bss`, `.data`, `.rodata`, `.data.<name>`...).
    pub fn read_section(&self, section: &str) -> Result<Vec<u8>, KernelError> {
        let map = self.map(section)?;
        sys::map_lookup(map.fd, &0u32.to_ne_bytes(), map.value_size as usize)
            .map_err(|error| KernelError::Syscall {
                what: "reading a global-data section",
                error,
            })?
            .ok_or_else(|| KernelError::NoSuchMap(section.to_string()))
    }

    pub fn write_section(&self, section: &str, bytes: &[u8]) -> Result<(), KernelError> {
        let map = self.map(section)?;
        sys::map_update(map.fd, &0u32.to_ne_bytes(), bytes).map_err(|error| KernelError::Syscall {
            what: "writing a global-data section",
            error,
        })
    }

    /// Every (key, value) of a hash map.
    pub fn map_entries(&self, map: &str) -> Result<Entries, KernelError> {
        let map = self.map(map)?;
        let syscall = |error| KernelError::Syscall {
            what: "reading a map",
            error,
        };
        let mut entries = Vec::new();
        for key in sys::map_keys(map.fd, map.key_size as usize).map_err(syscall)? {
            if let Some(value) =
                sys::map_lookup(map.fd, &key, map.value_size as usize).map_err(syscall)?
            {
                entries.push((key, value));
            }
        }
        Ok(entries)
    }

    /// Replaces the contents of a hash map.
    pub fn set_map_entries(
        &self,
        map: &str,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), KernelError> {
        let map = self.map(map)?;
        let syscall = |error| KernelError::Syscall {
            what: "writing a map",
            error,
        };
        for key in sys::map_keys(map.fd, map.key_size as usize).map_err(syscall)? {
            sys::map_delete(map.fd, &key).map_err(syscall)?;
        }
        for (key, value) in entries {
            sys::map_update(map.fd, key, value).map_err(syscall)?;
        }
        Ok(())
    }

    /// Drains a ring buffer: every record not yet consumed, oldest first.
    pub fn drain_ring_buffer(&mut self, map: &str) -> Result<Vec<Vec<u8>>, KernelError> {
        let map = self.map(map)?;
        libbpf::drain_ring_buffer(map.fd).map_err(|error| KernelError::Syscall {
            what: "reading a ring buffer",
            error,
        })
    }
}

/// A JIT image as text, one instruction a line with its offset (`  1a: mov rbx,rdi`), in
/// Intel syntax: what the optimizer shows a model, since this kernel's bpftool has no
/// disassembler.
pub fn x86_listing(image: &[u8]) -> String {
    use iced_x86::Formatter as _;
    let mut decoder = iced_x86::Decoder::new(64, image, iced_x86::DecoderOptions::NONE);
    let mut formatter = iced_x86::IntelFormatter::new();
    let mut out = String::new();
    let mut text = String::new();
    let mut instruction = iced_x86::Instruction::default();
    while decoder.can_decode() {
        let offset = decoder.position();
        decoder.decode_out(&mut instruction);
        text.clear();
        formatter.format(&instruction, &mut text);
        out.push_str(&format!("{offset:4x}: {text}\n"));
    }
    out
}

/// x86-64 instructions in a JIT image (its byte length says nothing about the count).
pub fn count_x86_instructions(image: &[u8]) -> u32 {
    let mut decoder = iced_x86::Decoder::new(64, image, iced_x86::DecoderOptions::NONE);
    let mut count = 0;
    let mut instruction = iced_x86::Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `push rbp; mov rbp,rsp; xor eax,eax; leave; ret`, as a JIT prologue and epilogue look.
    const IMAGE: [u8; 9] = [0x55, 0x48, 0x89, 0xe5, 0x31, 0xc0, 0xc9, 0xc3, 0x90];

    #[test]
    fn a_jit_image_lists_one_instruction_a_line_and_counts_the_same() {
        let listing = x86_listing(&IMAGE);
        assert_eq!(
            listing,
            "   0: push rbp\n   1: mov rbp,rsp\n   4: xor eax,eax\n   6: leave\n   7: ret\n   8: nop\n"
        );
        assert_eq!(
            listing.lines().count() as u32,
            count_x86_instructions(&IMAGE)
        );
    }
}
