//! Which packets are RPCs (LANGUAGE.md §4.1), as plain Rust over the packet bytes.
//!
//! This is the reference the generated C must match: the differential tests feed its verdict
//! to the interpreter, and the checker runs it on its concrete pre-tests.

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
const PROTO_UDP: u8 = 17;

/// What the XDP program must make of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Not an RPC request: `XDP_PASS`, untouched, no state changes.
    NotRpc,
    /// An RPC request; `payload_len` is the UDP length field minus 8, what
    /// `byte_size(rpc, _)` returns.
    Rpc { payload_len: u16 },
}

/// Classifies one Ethernet frame for a service listening on UDP `port`.
pub fn classify(frame: &[u8], port: u16) -> Classification {
    let Some(ethertype) = be16(frame, 12) else {
        return Classification::NotRpc;
    };
    let udp_start = match ethertype {
        ETHERTYPE_IPV4 => ipv4_udp_start(frame),
        ETHERTYPE_IPV6 => ipv6_udp_start(frame),
        _ => None,
    };
    let Some(udp) = udp_start else {
        return Classification::NotRpc;
    };
    let (Some(dest_port), Some(length)) = (be16(frame, udp + 2), be16(frame, udp + 4)) else {
        return Classification::NotRpc;
    };
    // The length field covers header and payload; trailing padding after it is allowed.
    let available = frame.len() - udp;
    if dest_port != port || usize::from(length) < UDP_HEADER || usize::from(length) > available {
        return Classification::NotRpc;
    }
    Classification::Rpc {
        payload_len: length - UDP_HEADER as u16,
    }
}

/// The start of the UDP header inside an IPv4 packet that carries UDP and is not a fragment.
fn ipv4_udp_start(frame: &[u8]) -> Option<usize> {
    let version_ihl = *frame.get(ETH_HEADER)?;
    let (version, ihl) = (version_ihl >> 4, usize::from(version_ihl & 0x0F));
    if version != 4 || ihl < 5 || frame.len() < ETH_HEADER + ihl * 4 {
        return None;
    }
    let fragment = be16(frame, ETH_HEADER + 6)? & 0x3FFF;
    let protocol = *frame.get(ETH_HEADER + 9)?;
    if fragment != 0 || protocol != PROTO_UDP {
        return None;
    }
    let udp = ETH_HEADER + ihl * 4;
    (frame.len() >= udp + UDP_HEADER).then_some(udp)
}

/// The start of the UDP header inside an IPv6 packet whose next header is UDP.
fn ipv6_udp_start(frame: &[u8]) -> Option<usize> {
    if frame.len() < ETH_HEADER + IPV6_HEADER || frame[ETH_HEADER] >> 4 != 6 {
        return None;
    }
    if frame[ETH_HEADER + 6] != PROTO_UDP {
        return None;
    }
    let udp = ETH_HEADER + IPV6_HEADER;
    (frame.len() >= udp + UDP_HEADER).then_some(udp)
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 9000;

    fn ethernet(ethertype: u16) -> Vec<u8> {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame
    }

    fn udp(dest: u16, length: u16, payload: usize) -> Vec<u8> {
        let mut header = vec![0x30, 0x39];
        header.extend_from_slice(&dest.to_be_bytes());
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(&[0, 0]);
        header.extend(std::iter::repeat_n(0xAB, payload));
        header
    }

    fn ipv4(options: usize, flags_fragment: u16, protocol: u8, l4: &[u8]) -> Vec<u8> {
        let ihl = 5 + options / 4;
        let mut frame = ethernet(ETHERTYPE_IPV4);
        let total = (ihl * 4 + l4.len()) as u16;
        frame.push(0x40 | ihl as u8);
        frame.push(0);
        frame.extend_from_slice(&total.to_be_bytes());
        frame.extend_from_slice(&[0, 1]);
        frame.extend_from_slice(&flags_fragment.to_be_bytes());
        frame.extend_from_slice(&[64, protocol, 0, 0]);
        frame.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        frame.extend(std::iter::repeat_n(1, options));
        frame.extend_from_slice(l4);
        frame
    }

    fn ipv6(next_header: u8, l4: &[u8]) -> Vec<u8> {
        let mut frame = ethernet(ETHERTYPE_IPV6);
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[next_header, 64]);
        frame.extend(std::iter::repeat_n(0xFE, 32));
        frame.extend_from_slice(l4);
        frame
    }

    fn rpc(payload_len: u16) -> Classification {
        Classification::Rpc { payload_len }
    }

    #[test]
    fn ipv4_udp_to_the_port_is_an_rpc() {
        let frame = ipv4(0, 0, PROTO_UDP, &udp(PORT, 8 + 100, 100));
        assert_eq!(classify(&frame, PORT), rpc(100));
        assert_eq!(classify(&frame, PORT + 1), Classification::NotRpc);
    }

    #[test]
    fn ipv4_options_move_the_udp_header() {
        let frame = ipv4(12, 0, PROTO_UDP, &udp(PORT, 8 + 5, 5));
        assert_eq!(classify(&frame, PORT), rpc(5));
    }

    #[test]
    fn dont_fragment_is_fine_but_fragments_are_not() {
        let df = ipv4(0, 0x4000, PROTO_UDP, &udp(PORT, 8, 0));
        assert_eq!(classify(&df, PORT), rpc(0));
        for fragment in [0x2000u16, 0x0001, 0x1FFF] {
            let frame = ipv4(0, fragment, PROTO_UDP, &udp(PORT, 8, 0));
            assert_eq!(
                classify(&frame, PORT),
                Classification::NotRpc,
                "{fragment:#x}"
            );
        }
    }

    #[test]
    fn other_protocols_and_ethertypes_pass() {
        assert_eq!(
            classify(&ipv4(0, 0, 6, &udp(PORT, 8, 0)), PORT),
            Classification::NotRpc
        );
        let mut arp = ethernet(0x0806);
        arp.extend(std::iter::repeat_n(0, 28));
        assert_eq!(classify(&arp, PORT), Classification::NotRpc);
        let mut vlan = ethernet(0x8100);
        vlan.extend(ipv4(0, 0, PROTO_UDP, &udp(PORT, 8, 0))[12..].iter());
        assert_eq!(classify(&vlan, PORT), Classification::NotRpc);
    }

    #[test]
    fn ipv6_without_extension_headers() {
        assert_eq!(
            classify(&ipv6(PROTO_UDP, &udp(PORT, 8 + 3, 3)), PORT),
            rpc(3)
        );
        // Hop-by-hop options first: not handled in this version.
        assert_eq!(
            classify(&ipv6(0, &udp(PORT, 8, 0)), PORT),
            Classification::NotRpc
        );
    }

    #[test]
    fn the_udp_length_must_be_sane() {
        let short = ipv4(0, 0, PROTO_UDP, &udp(PORT, 7, 0));
        assert_eq!(classify(&short, PORT), Classification::NotRpc);
        let beyond = ipv4(0, 0, PROTO_UDP, &udp(PORT, 8 + 11, 10));
        assert_eq!(classify(&beyond, PORT), Classification::NotRpc);
        // Ethernet padding after the datagram is allowed.
        let padded = ipv4(0, 0, PROTO_UDP, &udp(PORT, 8 + 2, 20));
        assert_eq!(classify(&padded, PORT), rpc(2));
    }

    #[test]
    fn bad_ip_headers_pass() {
        let mut frame = ipv4(0, 0, PROTO_UDP, &udp(PORT, 8, 0));
        frame[ETH_HEADER] = 0x44; // IHL 4
        assert_eq!(classify(&frame, PORT), Classification::NotRpc);
        frame[ETH_HEADER] = 0x65; // version 6 in an IPv4 frame
        assert_eq!(classify(&frame, PORT), Classification::NotRpc);
    }

    #[test]
    fn every_truncation_of_an_rpc_is_not_an_rpc() {
        for frame in [
            ipv4(0, 0, PROTO_UDP, &udp(PORT, 8 + 4, 4)),
            ipv4(8, 0, PROTO_UDP, &udp(PORT, 8 + 4, 4)),
            ipv6(PROTO_UDP, &udp(PORT, 8 + 4, 4)),
        ] {
            assert_eq!(classify(&frame, PORT), rpc(4));
            for len in 0..frame.len() {
                assert_eq!(
                    classify(&frame[..len], PORT),
                    Classification::NotRpc,
                    "cut at {len}"
                );
            }
        }
    }
}
