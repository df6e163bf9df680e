//! Measuring a loaded program the same way every time: the representative packet, the
//! repetition counts, and the facts about the kernel that change the numbers.

use crate::kernel::{KernelError, LoadedProgram, Measurement};

/// `BPF_PROG_TEST_RUN` repetitions per run, and runs whose median is reported.
pub const REPEAT: u32 = 100_000;
pub const RUNS: usize = 5;
/// The UDP payload of the representative RPC.
pub const PAYLOAD_LEN: usize = 64;

/// An Ethernet + IPv4 (no options) + UDP frame to `port` with `payload_len` payload bytes.
pub fn rpc_packet_ipv4(port: u16, payload_len: usize) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00];
    let udp_len = (8 + payload_len) as u16;
    let total = 20 + udp_len;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    frame.extend_from_slice(&40000u16.to_be_bytes());
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend(std::iter::repeat_n(0xAB, payload_len));
    frame
}

/// What the kernel says about a loaded program, and how fast it runs on the representative
/// packet.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelNumbers {
    pub sizes: Measurement,
    pub ns_per_packet: f64,
    /// The x86-64 code the JIT made (`kernel::x86_listing` shows it).
    pub jit_image: Vec<u8>,
}

pub fn measure(loaded: &LoadedProgram, port: u16) -> Result<KernelNumbers, KernelError> {
    let measured = loaded.measure()?;
    let packet = rpc_packet_ipv4(port, PAYLOAD_LEN);
    let ns_per_packet = loaded.ns_per_packet(&packet, REPEAT, RUNS)?;
    Ok(KernelNumbers {
        sizes: measured.sizes,
        ns_per_packet,
        jit_image: measured.jit_image,
    })
}

/// Facts recorded with every measurement: they change the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFacts {
    pub release: String,
    /// `net.core.bpf_jit_harden`: constant blinding inflates instruction counts.
    pub jit_harden: Option<String>,
}

pub fn kernel_facts() -> KernelFacts {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    KernelFacts {
        release: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".to_string()),
        jit_harden: read("/proc/sys/net/core/bpf_jit_harden"),
    }
}
