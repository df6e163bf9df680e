//! The few functions of the system's libbpf (Debian's `libbpf1`, 1.1) that load an object the
//! way `bpftool` and libbpf-based loaders do: maps and global data created with their BTF (so
//! a `bpf_spin_lock` may sit in `.bss`, `.data` or a custom `.data.<name>` section), CO-RE
//! and relocations applied, programs loaded. Everything else — reading and writing map
//! entries, test runs, program info — goes through `sys.rs`'s raw `bpf(2)` calls on the
//! descriptors libbpf hands out.
//!
//! Why libbpf rather than aya 0.14 (docs/design.md): aya 0.14 creates global-data maps
//! without BTF, and the kernel refuses a lock in a map without BTF, so libbpf-style programs
//! could not be loaded (and their counterexamples not replayed). Linking the system library
//! adds no build time; the package is installed by `scripts/setup` anyway.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::Once;

#[repr(C)]
struct BpfObjectRaw {
    _private: [u8; 0],
}

#[repr(C)]
struct BpfProgramRaw {
    _private: [u8; 0],
}

#[repr(C)]
struct BpfMapRaw {
    _private: [u8; 0],
}

#[repr(C)]
struct RingBufferRaw {
    _private: [u8; 0],
}

type PrintFn = Option<unsafe extern "C" fn(c_int, *const c_char, *mut c_void) -> c_int>;
type SampleFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> c_int;

#[link(name = "bpf")]
unsafe extern "C" {
    fn libbpf_set_print(print: PrintFn) -> PrintFn;
    fn bpf_object__open_mem(
        buf: *const c_void,
        size: usize,
        opts: *const c_void,
    ) -> *mut BpfObjectRaw;
    fn bpf_object__load(obj: *mut BpfObjectRaw) -> c_int;
    fn bpf_object__close(obj: *mut BpfObjectRaw);
    fn bpf_object__next_program(
        obj: *const BpfObjectRaw,
        prog: *mut BpfProgramRaw,
    ) -> *mut BpfProgramRaw;
    fn bpf_program__name(prog: *const BpfProgramRaw) -> *const c_char;
    fn bpf_program__type(prog: *const BpfProgramRaw) -> u32;
    fn bpf_program__set_autoload(prog: *mut BpfProgramRaw, autoload: bool) -> c_int;
    fn bpf_program__set_log_buf(prog: *mut BpfProgramRaw, buf: *mut c_char, size: usize) -> c_int;
    fn bpf_program__set_log_level(prog: *mut BpfProgramRaw, level: u32) -> c_int;
    fn bpf_program__fd(prog: *const BpfProgramRaw) -> c_int;
    fn bpf_object__find_map_by_name(
        obj: *const BpfObjectRaw,
        name: *const c_char,
    ) -> *mut BpfMapRaw;
    fn bpf_map__fd(map: *const BpfMapRaw) -> c_int;
    fn bpf_map__key_size(map: *const BpfMapRaw) -> u32;
    fn bpf_map__value_size(map: *const BpfMapRaw) -> u32;
    fn ring_buffer__new(
        map_fd: c_int,
        sample: SampleFn,
        ctx: *mut c_void,
        opts: *const c_void,
    ) -> *mut RingBufferRaw;
    fn ring_buffer__consume(rb: *mut RingBufferRaw) -> c_int;
    fn ring_buffer__free(rb: *mut RingBufferRaw);
}

/// `BPF_PROG_TYPE_XDP` in the kernel's enum.
pub const PROG_TYPE_XDP: u32 = 6;

/// The verifier log buffer for a program the verifier refused (its end says why).
const LOG_SIZE: usize = 16 * 1024 * 1024;

/// libbpf prints warnings on stderr by default; the loader reports errors itself.
fn quiet() {
    static QUIET: Once = Once::new();
    // SAFETY: setting the print callback to none has no preconditions.
    QUIET.call_once(|| unsafe {
        libbpf_set_print(None);
    });
}

/// An opened (and, after `load`, loaded) object; closed on drop, which also closes every
/// descriptor it owns.
#[derive(Debug)]
pub struct Object {
    raw: NonNull<BpfObjectRaw>,
}

/// A program of an object, by its raw handle (valid while the object lives).
#[derive(Debug, Clone, Copy)]
pub struct Program {
    raw: NonNull<BpfProgramRaw>,
}

/// Why `load` failed: the error, and the verifier's log when there is one.
#[derive(Debug)]
pub struct LoadFailure {
    pub error: io::Error,
    pub log: String,
}

impl Object {
    /// Parses an ELF object (nothing is created in the kernel yet).
    pub fn open(elf: &[u8]) -> io::Result<Object> {
        quiet();
        // SAFETY: libbpf copies the buffer it is given (open_mem keeps its own copy of
        // the object); a null options pointer means the defaults.
        let raw = unsafe { bpf_object__open_mem(elf.as_ptr().cast(), elf.len(), std::ptr::null()) };
        NonNull::new(raw)
            .map(|raw| Object { raw })
            .ok_or_else(io::Error::last_os_error)
    }

    /// Every program with its name and whether it is an XDP program.
    pub fn programs(&self) -> Vec<(String, bool, Program)> {
        let mut programs = Vec::new();
        let mut current = std::ptr::null_mut();
        loop {
            // SAFETY: the object is open; `current` is null or a program of this object.
            current = unsafe { bpf_object__next_program(self.raw.as_ptr(), current) };
            let Some(raw) = NonNull::new(current) else {
                return programs;
            };
            // SAFETY: a live program's name is a NUL-terminated string owned by libbpf.
            let name = unsafe { CStr::from_ptr(bpf_program__name(raw.as_ptr())) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: a live program.
            let xdp = unsafe { bpf_program__type(raw.as_ptr()) } == PROG_TYPE_XDP;
            programs.push((name, xdp, Program { raw }));
        }
    }

    /// Creates the maps and loads `chosen` only. On a verifier rejection the object is
    /// opened again and loaded with a log, so that an accepted program pays nothing for it.
    pub fn load(elf: &[u8], chosen: &str) -> Result<Object, LoadFailure> {
        let failure = |error: io::Error| LoadFailure {
            error,
            log: String::new(),
        };
        let object = Object::open(elf).map_err(failure)?;
        object.only(chosen);
        // SAFETY: the object is open and not loaded yet.
        let result = unsafe { bpf_object__load(object.raw.as_ptr()) };
        if result == 0 {
            return Ok(object);
        }
        let error = io::Error::from_raw_os_error(-result);
        drop(object);
        let again = Object::open(elf).map_err(failure)?;
        let Some(program) = again.only(chosen) else {
            return Err(failure(error));
        };
        let mut log = vec![0u8; LOG_SIZE];
        // SAFETY: the buffer outlives the load below (it is dropped after it), and the
        // program belongs to the open object.
        unsafe {
            bpf_program__set_log_buf(program.raw.as_ptr(), log.as_mut_ptr().cast(), log.len());
            bpf_program__set_log_level(program.raw.as_ptr(), 1);
        }
        // SAFETY: as above.
        let retried = unsafe { bpf_object__load(again.raw.as_ptr()) };
        let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
        let log = String::from_utf8_lossy(&log[..end]).into_owned();
        drop(again);
        let error = if retried < 0 {
            io::Error::from_raw_os_error(-retried)
        } else {
            error
        };
        Err(LoadFailure { error, log })
    }

    /// Marks every program but `chosen` not to be loaded; returns `chosen`.
    fn only(&self, chosen: &str) -> Option<Program> {
        let mut found = None;
        for (name, _, program) in self.programs() {
            let keep = name == chosen;
            // SAFETY: a program of this open, not yet loaded object.
            unsafe { bpf_program__set_autoload(program.raw.as_ptr(), keep) };
            if keep {
                found = Some(program);
            }
        }
        found
    }

    /// The loaded program's descriptor, borrowed from the object.
    pub fn program_fd(&self, name: &str) -> Option<BorrowedFd<'_>> {
        let program = self
            .programs()
            .into_iter()
            .find(|(program, _, _)| program == name)?
            .2;
        // SAFETY: a program of this object.
        let fd = unsafe { bpf_program__fd(program.raw.as_ptr()) };
        // SAFETY: a loaded program's descriptor stays open until the object is closed, which
        // the borrow's lifetime prevents while it lives.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// A map by its name in the object (a global-data section by its section name: `.bss`,
    /// `.data.rl`, ...).
    pub fn map(&self, name: &str) -> Option<MapHandle<'_>> {
        let name = CString::new(name).ok()?;
        // SAFETY: the object is open; `name` is NUL-terminated and outlives the call.
        let map = unsafe { bpf_object__find_map_by_name(self.raw.as_ptr(), name.as_ptr()) };
        let map = NonNull::new(map)?;
        // SAFETY: a map of this object.
        let (fd, key_size, value_size) = unsafe {
            (
                bpf_map__fd(map.as_ptr()),
                bpf_map__key_size(map.as_ptr()),
                bpf_map__value_size(map.as_ptr()),
            )
        };
        (fd >= 0).then(|| MapHandle {
            // SAFETY: as for programs: open until the object is closed.
            fd: unsafe { BorrowedFd::borrow_raw(fd) },
            key_size,
            value_size,
        })
    }
}

/// A created map's descriptor and entry sizes.
#[derive(Debug, Clone, Copy)]
pub struct MapHandle<'a> {
    pub fd: BorrowedFd<'a>,
    pub key_size: u32,
    pub value_size: u32,
}

// SAFETY: once loaded, an object is only read through `&self` (program and map lookups by
// name, which walk libbpf's arrays without changing them); the only change after loading is
// closing it, in `drop`, which takes it by value. libbpf keeps no thread-local state for an
// object.
unsafe impl Send for Object {}
// SAFETY: as above: shared references only read.
unsafe impl Sync for Object {}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: the object was opened by `open` and is closed once, here.
        unsafe { bpf_object__close(self.raw.as_ptr()) };
    }
}

unsafe extern "C" fn collect(ctx: *mut c_void, data: *mut c_void, size: usize) -> c_int {
    // SAFETY: `ctx` is the `Vec` `drain_ring_buffer` passed, alive for the whole consume; the
    // kernel's record is `size` readable bytes at `data`.
    unsafe {
        let records = &mut *ctx.cast::<Vec<Vec<u8>>>();
        records.push(std::slice::from_raw_parts(data.cast::<u8>(), size).to_vec());
    }
    0
}

/// Every record in a ring buffer map not yet consumed, oldest first; consumes them.
pub fn drain_ring_buffer(map: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let map_fd = map.as_raw_fd();
    let mut records: Vec<Vec<u8>> = Vec::new();
    // SAFETY: `map_fd` is a ring buffer map's descriptor; the callback's context is
    // `records`, which outlives the ring buffer (freed below, before it goes).
    unsafe {
        let ring = ring_buffer__new(
            map_fd,
            collect,
            (&mut records as *mut Vec<Vec<u8>>).cast(),
            std::ptr::null(),
        );
        let Some(ring) = NonNull::new(ring) else {
            return Err(io::Error::last_os_error());
        };
        let consumed = ring_buffer__consume(ring.as_ptr());
        ring_buffer__free(ring.as_ptr());
        if consumed < 0 {
            return Err(io::Error::from_raw_os_error(-consumed));
        }
    }
    Ok(records)
}
