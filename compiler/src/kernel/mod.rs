//! Everything that needs the running kernel, behind one small surface: load an XDP object
//! (aya creates its maps and global-data sections), get the verifier's verdict and log, read
//! the translated and JIT-compiled sizes, count x86 instructions in the JIT image, run
//! `BPF_PROG_TEST_RUN`, and read or write globals and map entries.

mod sys;

pub use sys::monotonic_ns;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use aya::Ebpf;
use aya::maps::Map;
use aya::programs::{ProgramError, Xdp};

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

/// A program the verifier accepted, with its maps, alive until dropped.
#[derive(Debug)]
pub struct LoadedProgram {
    ebpf: Ebpf,
    program: String,
}

impl LoadedProgram {
    /// Loads the XDP program `name` of an ELF object (the only one when `None`), creating
    /// its maps and global-data sections with the object's initial contents (libbpf-style
    /// global data).
    pub fn load(elf: &[u8], name: Option<&str>) -> Result<LoadedProgram, KernelError> {
        // aya loads without a log first and retries with one only when the verifier says no,
        // so an accepted program pays nothing for the log.
        let mut ebpf = aya::EbpfLoader::new().load(elf).map_err(load_error)?;
        let program = choose_xdp(
            name,
            ebpf.programs()
                .map(|(name, program)| (name, matches!(program, aya::programs::Program::Xdp(_)))),
        )?;
        let xdp: &mut Xdp = ebpf
            .program_mut(&program)
            .ok_or_else(|| KernelError::Load(format!("no program `{program}`")))?
            .try_into()
            .map_err(|err: ProgramError| KernelError::Load(err.to_string()))?;
        xdp.load().map_err(program_error)?;
        Ok(LoadedProgram { ebpf, program })
    }

    /// The name of the XDP function in the object.
    pub fn program_name(&self) -> &str {
        &self.program
    }

    fn prog_fd(&self) -> Result<BorrowedFd<'_>, KernelError> {
        let program = self
            .ebpf
            .program(&self.program)
            .ok_or_else(|| KernelError::Load(format!("no program `{}`", self.program)))?;
        program
            .fd()
            .map(|fd| fd.as_fd())
            .map_err(|err| KernelError::Load(err.to_string()))
    }

    pub fn measure(&self) -> Result<Measurement, KernelError> {
        let info = sys::prog_info(self.prog_fd()?).map_err(|error| KernelError::Syscall {
            what: "reading the program's info",
            error,
        })?;
        Ok(Measurement {
            xlated_insns: info.xlated_prog_len / 8,
            xlated_bytes: info.xlated_prog_len,
            jited_insns: count_x86_instructions(&info.jited_image),
            jited_bytes: info.jited_prog_len,
            verified_insns: info.verified_insns,
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

    fn map_fd(&self, name: &str) -> Result<(BorrowedFd<'_>, u32, u32), KernelError> {
        let map = self
            .ebpf
            .map(name)
            .ok_or_else(|| KernelError::NoSuchMap(name.to_string()))?;
        let data = match map {
            Map::Array(data) | Map::HashMap(data) | Map::RingBuf(data) => data,
            _ => return Err(KernelError::NoSuchMap(name.to_string())),
        };
        let info = data
            .info()
            .map_err(|err| KernelError::Load(err.to_string()))?;
        Ok((data.fd().as_fd(), info.key_size(), info.value_size()))
    }

    /// The bytes of a global-data section (`.bss`, `.data`, `.rodata`, ...).
    pub fn read_section(&self, section: &str) -> Result<Vec<u8>, KernelError> {
        let (fd, _, value_size) = self.map_fd(section)?;
        sys::map_lookup(fd, &0u32.to_ne_bytes(), value_size as usize)
            .map_err(|error| KernelError::Syscall {
                what: "reading a global-data section",
                error,
            })?
            .ok_or_else(|| KernelError::NoSuchMap(section.to_string()))
    }

    pub fn write_section(&self, section: &str, bytes: &[u8]) -> Result<(), KernelError> {
        let (fd, _, _) = self.map_fd(section)?;
        sys::map_update(fd, &0u32.to_ne_bytes(), bytes).map_err(|error| KernelError::Syscall {
            what: "writing a global-data section",
            error,
        })
    }

    /// Every (key, value) of a hash map.
    pub fn map_entries(&self, map: &str) -> Result<Entries, KernelError> {
        let (fd, key_size, value_size) = self.map_fd(map)?;
        let syscall = |error| KernelError::Syscall {
            what: "reading a map",
            error,
        };
        let mut entries = Vec::new();
        for key in sys::map_keys(fd, key_size as usize).map_err(syscall)? {
            if let Some(value) = sys::map_lookup(fd, &key, value_size as usize).map_err(syscall)? {
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
        let (fd, key_size, _) = self.map_fd(map)?;
        let syscall = |error| KernelError::Syscall {
            what: "writing a map",
            error,
        };
        for key in sys::map_keys(fd, key_size as usize).map_err(syscall)? {
            sys::map_delete(fd, &key).map_err(syscall)?;
        }
        for (key, value) in entries {
            sys::map_update(fd, key, value).map_err(syscall)?;
        }
        Ok(())
    }

    /// Drains a ring buffer: every record not yet consumed, oldest first.
    pub fn drain_ring_buffer(&mut self, map: &str) -> Result<Vec<Vec<u8>>, KernelError> {
        let map = self
            .ebpf
            .map_mut(map)
            .ok_or_else(|| KernelError::NoSuchMap(map.to_string()))?;
        let mut ring =
            aya::maps::RingBuf::try_from(map).map_err(|err| KernelError::Load(err.to_string()))?;
        let mut records = Vec::new();
        while let Some(item) = ring.next() {
            records.push(item.to_vec());
        }
        Ok(records)
    }
}

fn load_error(err: aya::EbpfError) -> KernelError {
    match err {
        aya::EbpfError::ProgramError(err) => program_error(err),
        aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            KernelError::NotPermitted(io_error.to_string())
        }
        other => KernelError::Load(other.to_string()),
    }
}

fn program_error(err: ProgramError) -> KernelError {
    match err {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            if io_error.raw_os_error() == Some(libc::EPERM)
                && verifier_log.to_string().trim().is_empty()
            {
                KernelError::NotPermitted(io_error.to_string())
            } else {
                KernelError::Rejected {
                    log: verifier_log.to_string(),
                }
            }
        }
        other => KernelError::Load(other.to_string()),
    }
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
