//! The few `bpf(2)` commands aya 0.14 does not expose the way we need them: the JIT image
//! bytes, raw element access on maps whose value layout is only known at run time, and
//! `BPF_PROG_TEST_RUN` with the kernel's own per-run duration.
//!
//! Each command has its own `#[repr(C)]` attribute struct, padded to the size the kernel
//! accepts; the kernel requires unused tail bytes to be zero, which `Default` gives.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized `#[repr(C)]` attribute struct for `cmd`; every
    // pointer inside it refers to a buffer that outlives the call and has the length given.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Reads the value under `key`; `Ok(None)` when the key is absent.
pub fn map_lookup(
    map: BorrowedFd<'_>,
    key: &[u8],
    value_size: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut value = vec![0u8; value_size];
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(Some(value)),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(err) => Err(err),
    }
}

pub fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

pub fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
        Err(err) if err.raw_os_error() != Some(libc::ENOENT) => Err(err),
        _ => Ok(()),
    }
}

/// Every key of a hash map, in the kernel's iteration order.
pub fn map_keys(map: BorrowedFd<'_>, key_size: usize) -> io::Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    loop {
        let mut next = vec![0u8; key_size];
        let mut attr = MapElemAttr {
            map_fd: map.as_raw_fd() as u32,
            key: current.as_ref().map_or(0, |key| key.as_ptr() as u64),
            value: next.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(_) => {
                keys.push(next.clone());
                current = Some(next);
            }
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(keys),
            Err(err) => return Err(err),
        }
    }
}

/// One `BPF_PROG_TEST_RUN`: the program's return value and the kernel's mean duration per
/// repetition in nanoseconds.
pub fn test_run(prog: BorrowedFd<'_>, packet: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
    // XDP test runs may grow the packet; give the output room so the kernel never reports
    // ENOSPC for a program that only reads.
    let mut out = vec![0u8; packet.len() + 4096];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: packet.len() as u32,
        data_size_out: out.len() as u32,
        data_in: packet.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok((attr.retval, attr.duration))
}

/// What `BPF_OBJ_GET_INFO_BY_FD` tells about a loaded program, with the JIT image bytes.
#[derive(Debug, Clone, Default)]
pub struct ProgInfo {
    pub xlated_prog_len: u32,
    pub jited_prog_len: u32,
    pub verified_insns: u32,
    pub jited_image: Vec<u8>,
}

pub fn prog_info(prog: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    use aya_obj::generated::bpf_prog_info;

    // First call learns the lengths, the second fetches the JIT image into a buffer that size.
    let mut info = zeroed_info();
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: &mut info as *mut bpf_prog_info as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let (xlated, jited, verified) = (
        info.xlated_prog_len,
        info.jited_prog_len,
        info.verified_insns,
    );

    let mut image = vec![0u8; jited as usize];
    let mut info = zeroed_info();
    info.jited_prog_len = jited;
    info.jited_prog_insns = image.as_mut_ptr() as u64;
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: &mut info as *mut bpf_prog_info as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    if jited > 0 && info.jited_prog_insns == 0 {
        // The kernel zeroes the pointer instead of failing when the caller lacks CAP_SYSLOG.
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the kernel withheld the JIT image (CAP_SYSLOG is needed to read it)",
        ));
    }
    Ok(ProgInfo {
        xlated_prog_len: xlated,
        jited_prog_len: jited,
        verified_insns: verified,
        jited_image: image,
    })
}

fn zeroed_info() -> aya_obj::generated::bpf_prog_info {
    // SAFETY: `bpf_prog_info` is a plain C struct of integers and bitfields; all-zero is the
    // value the kernel expects for every field we do not ask about.
    unsafe { std::mem::zeroed() }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
