//! Generated inputs for the kernel tests: frames of every kind LANGUAGE.md §4.1 tells apart,
//! and pre-states of a program's stored variables.

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_rational::BigRational;
use simplebpf_compiler::contract::{Contract, Place};
use simplebpf_dsl::interp::{State, Value};
use simplebpf_dsl::ir::Type;

use super::{PORT, Rng};

fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame
}

fn udp(rng: &mut Rng, dest: u16, payload: usize) -> Vec<u8> {
    let mut header = vec![0x9c, 0x40];
    header.extend_from_slice(&dest.to_be_bytes());
    header.extend_from_slice(&((payload + 8) as u16).to_be_bytes());
    header.extend_from_slice(&[0, 0]);
    header.extend((0..payload).map(|_| rng.below(256) as u8));
    header
}

fn ipv4(rng: &mut Rng, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let ihl = 5 + if rng.chance(30) {
        rng.below(11) as usize
    } else {
        0
    };
    let mut frame = ethernet(0x0800);
    frame.push(0x40 | ihl as u8);
    frame.push(0);
    frame.extend_from_slice(&((ihl * 4 + l4.len()) as u16).to_be_bytes());
    frame.extend_from_slice(&[0x12, 0x34]);
    let flags: u16 = if rng.chance(50) { 0x4000 } else { 0 };
    frame.extend_from_slice(&flags.to_be_bytes());
    frame.extend_from_slice(&[64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    frame.extend((0..(ihl - 5) * 4).map(|_| 1u8));
    frame.extend_from_slice(l4);
    frame
}

fn ipv6(next_header: u8, l4: &[u8]) -> Vec<u8> {
    let mut frame = ethernet(0x86DD);
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[next_header, 64]);
    frame.extend((0..32).map(|i| i as u8));
    frame.extend_from_slice(l4);
    frame
}

pub fn rpc(rng: &mut Rng) -> Vec<u8> {
    let payload = if rng.chance(20) {
        rng.below(1400)
    } else {
        rng.below(200)
    } as usize;
    let l4 = udp(rng, PORT, payload);
    let mut frame = if rng.chance(70) {
        ipv4(rng, 17, &l4)
    } else {
        ipv6(17, &l4)
    };
    if rng.chance(15) {
        // Ethernet padding after the datagram is allowed.
        frame.extend((0..rng.below(30)).map(|_| 0u8));
    }
    frame
}

/// A packet of one of the kinds LANGUAGE.md §4.1 distinguishes. XDP never sees frames
/// shorter than an Ethernet header, and the kernel refuses them in test runs, so every frame
/// has at least 14 bytes.
pub fn packet(rng: &mut Rng) -> Vec<u8> {
    let mut frame = match rng.below(14) {
        0..=4 => rpc(rng),
        5 => {
            let port = loop {
                let p = rng.below(65536) as u16;
                if p != PORT {
                    break p;
                }
            };
            let payload = rng.below(100) as usize;
            let l4 = udp(rng, port, payload);
            if rng.chance(50) {
                ipv4(rng, 17, &l4)
            } else {
                ipv6(17, &l4)
            }
        }
        6 => {
            // TCP to the service port, or IPv6 with an extension header first.
            let payload = rng.below(100) as usize;
            let l4 = udp(rng, PORT, payload);
            if rng.chance(50) {
                ipv4(rng, 6, &l4)
            } else {
                ipv6(if rng.chance(50) { 0 } else { 6 }, &l4)
            }
        }
        7 => {
            let mut frame = ethernet(if rng.chance(50) { 0x0806 } else { 0x8100 });
            frame.extend((0..rng.below(80)).map(|_| rng.below(256) as u8));
            frame
        }
        8..=10 => {
            // Truncated at a random point, header boundaries included.
            let mut frame = rpc(rng);
            let cut = 14 + rng.below(frame.len() as u64 - 13) as usize;
            frame.truncate(cut);
            frame
        }
        11 => {
            let mut frame = rpc(rng);
            let ipv4 = frame[12] == 0x08;
            match rng.below(5) {
                0 if ipv4 => frame[14] = 0x40 | rng.below(5) as u8,
                0 => frame[14] = 0x40,
                1 if ipv4 => {
                    let offset = 1 + rng.below(0x1fff) as u16;
                    frame[20..22]
                        .copy_from_slice(&(offset | (0x2000 * rng.below(2) as u16)).to_be_bytes())
                }
                1 => frame[14] = 0x40,
                2 => frame[14] = (rng.below(16) as u8) << 4 | (frame[14] & 0x0f),
                _ => {
                    // A UDP length field below 8 or beyond the frame.
                    let udp = if ipv4 {
                        14 + usize::from(frame[14] & 0x0f) * 4
                    } else {
                        54
                    };
                    let len = if rng.chance(50) {
                        rng.below(8) as u16
                    } else {
                        (frame.len() - udp + 1 + rng.below(100) as usize) as u16
                    };
                    frame[udp + 4..udp + 6].copy_from_slice(&len.to_be_bytes());
                }
            }
            frame
        }
        _ => (0..14 + rng.below(100))
            .map(|_| rng.below(256) as u8)
            .collect(),
    };
    if frame.len() < 14 {
        frame.resize(14, 0);
    }
    frame
}

fn int(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => i64::MAX as u64,
        4 => i64::MIN as u64,
        5 => rng.below(1000),
        6 => 0u64.wrapping_sub(rng.below(1000)),
        _ => rng.next_u64(),
    }
}

fn scalar(rng: &mut Rng, ty: &Type, scale: Option<&BigInt>, now: u64) -> Value {
    match ty {
        Type::Int => Value::Int(int(rng) as i64),
        Type::Uint => Value::Uint(int(rng)),
        Type::Bool => Value::Bool(rng.chance(50)),
        Type::Instant => Value::Instant(match rng.below(4) {
            0 => now,
            1 => now.saturating_sub(rng.below(2_000_000_000)),
            2 => 0,
            _ => rng.below(now.saturating_add(1).max(1)),
        }),
        Type::Float => {
            let scale = scale.cloned().unwrap_or_else(|| BigInt::from(1));
            let raw = match rng.below(3) {
                // Around the interesting values of the examples: multiples of the scale.
                0 => BigInt::from(rng.below(300) as i64 - 100) * &scale,
                _ => BigInt::from(int(rng) as i64),
            };
            Value::Float(BigRational::new(raw, scale))
        }
        other => panic!("no generator for {other}"),
    }
}

/// A pre-state: the state after `init`, with every variable the program stores replaced by
/// a generated value (user space may have written anything there).
pub fn pre_state(rng: &mut Rng, contract: &Contract, initial: &State, now: u64) -> State {
    let mut vars = initial.vars.clone();
    for var in &contract.vars {
        let value = match &var.place {
            Place::Constant(_) => continue,
            Place::Global(_) => scalar(rng, &var.ty, var.scale.as_ref(), now),
            Place::HashMap { .. } => {
                let (key, value) = var.map_codecs().expect("a map");
                let mut entries = BTreeMap::new();
                for _ in 0..rng.below(4) {
                    let k = if rng.chance(50) {
                        match key.ty {
                            Type::Int => Value::Int(rng.below(200) as i64),
                            Type::Uint => Value::Uint(rng.below(200)),
                            _ => scalar(rng, &key.ty, key.scale.as_ref(), now),
                        }
                    } else {
                        scalar(rng, &key.ty, key.scale.as_ref(), now)
                    };
                    entries.insert(k, scalar(rng, &value.ty, value.scale.as_ref(), now));
                }
                Value::Map(entries)
            }
            Place::RingBuf { .. } => Value::Vec(int(rng)),
        };
        vars.insert(var.name.clone(), value);
    }
    State { vars }
}
