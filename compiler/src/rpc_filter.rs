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

/// The clause of LANGUAGE.md §4.1 a packet fails first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Clause {
    #[error("shorter than an Ethernet header")]
    EthernetHeader,
    #[error("the EtherType is neither IPv4 (0x0800) nor IPv6 (0x86DD)")]
    EtherType,
    #[error("the IPv4 version field is not 4")]
    Ipv4Version,
    #[error("the IPv4 header length (IHL) is below 5")]
    Ipv4Ihl,
    #[error("the IPv4 header (IHL × 4 bytes) is not all in the packet")]
    Ipv4Header,
    #[error("an IPv4 fragment (frag_off & 0x3FFF is not 0)")]
    Ipv4Fragment,
    #[error("the IPv4 protocol is not UDP (17)")]
    Ipv4Protocol,
    #[error("shorter than the fixed 40-byte IPv6 header")]
    Ipv6Header,
    #[error("the IPv6 version field is not 6")]
    Ipv6Version,
    #[error("the IPv6 next header is not UDP (17)")]
    Ipv6NextHeader,
    #[error("the 8-byte UDP header is not all in the packet")]
    UdpHeader,
    #[error("the UDP destination port is not the service port")]
    UdpPort,
    #[error("the UDP length field is below 8")]
    UdpLengthTooSmall,
    #[error("the UDP length field runs past the end of the frame")]
    UdpLengthBeyondFrame,
}

/// A packet's fields as §4.1 reads them, each present only when the packet has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields {
    pub len: usize,
    pub ethertype: Option<u16>,
    pub ip_version: Option<u8>,
    pub ihl: Option<u8>,
    /// IPv4 `frag_off` (flags and offset).
    pub frag_off: Option<u16>,
    /// IPv4 protocol or IPv6 next header.
    pub protocol: Option<u8>,
    pub udp_dest: Option<u16>,
    pub udp_length: Option<u16>,
}

/// A packet taken apart: its fields, and either its payload length (an RPC) or the first
/// clause it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dissection {
    pub fields: Fields,
    pub verdict: Result<u16, Clause>,
}

/// Classifies one Ethernet frame for a service listening on UDP `port`.
pub fn classify(frame: &[u8], port: u16) -> Classification {
    match dissect(frame, port).verdict {
        Ok(payload_len) => Classification::Rpc { payload_len },
        Err(_) => Classification::NotRpc,
    }
}

/// Reads a frame field by field, in the order §4.1 checks them.
pub fn dissect(frame: &[u8], port: u16) -> Dissection {
    let mut fields = Fields {
        len: frame.len(),
        ..Fields::default()
    };
    let verdict = read(frame, port, &mut fields);
    Dissection { fields, verdict }
}

fn read(frame: &[u8], port: u16, fields: &mut Fields) -> Result<u16, Clause> {
    let ethertype = be16(frame, 12).ok_or(Clause::EthernetHeader)?;
    fields.ethertype = Some(ethertype);
    let udp = match ethertype {
        ETHERTYPE_IPV4 => ipv4_udp_start(frame, fields)?,
        ETHERTYPE_IPV6 => ipv6_udp_start(frame, fields)?,
        _ => return Err(Clause::EtherType),
    };
    if frame.len() < udp + UDP_HEADER {
        return Err(Clause::UdpHeader);
    }
    let dest = be16(frame, udp + 2).ok_or(Clause::UdpHeader)?;
    let length = be16(frame, udp + 4).ok_or(Clause::UdpHeader)?;
    fields.udp_dest = Some(dest);
    fields.udp_length = Some(length);
    if dest != port {
        return Err(Clause::UdpPort);
    }
    if usize::from(length) < UDP_HEADER {
        return Err(Clause::UdpLengthTooSmall);
    }
    // The length field covers header and payload; trailing padding after it is allowed.
    if usize::from(length) > frame.len() - udp {
        return Err(Clause::UdpLengthBeyondFrame);
    }
    Ok(length - UDP_HEADER as u16)
}

/// The start of the UDP header inside an IPv4 packet that carries UDP and is not a fragment.
fn ipv4_udp_start(frame: &[u8], fields: &mut Fields) -> Result<usize, Clause> {
    let version_ihl = *frame.get(ETH_HEADER).ok_or(Clause::Ipv4Header)?;
    let (version, ihl) = (version_ihl >> 4, version_ihl & 0x0F);
    fields.ip_version = Some(version);
    fields.ihl = Some(ihl);
    if version != 4 {
        return Err(Clause::Ipv4Version);
    }
    if ihl < 5 {
        return Err(Clause::Ipv4Ihl);
    }
    let header = usize::from(ihl) * 4;
    if frame.len() < ETH_HEADER + header {
        return Err(Clause::Ipv4Header);
    }
    let frag_off = be16(frame, ETH_HEADER + 6).ok_or(Clause::Ipv4Header)?;
    let protocol = *frame.get(ETH_HEADER + 9).ok_or(Clause::Ipv4Header)?;
    fields.frag_off = Some(frag_off);
    fields.protocol = Some(protocol);
    if frag_off & 0x3FFF != 0 {
        return Err(Clause::Ipv4Fragment);
    }
    if protocol != PROTO_UDP {
        return Err(Clause::Ipv4Protocol);
    }
    Ok(ETH_HEADER + header)
}

/// The start of the UDP header inside an IPv6 packet whose next header is UDP.
fn ipv6_udp_start(frame: &[u8], fields: &mut Fields) -> Result<usize, Clause> {
    if frame.len() < ETH_HEADER + IPV6_HEADER {
        if let Some(byte) = frame.get(ETH_HEADER) {
            fields.ip_version = Some(byte >> 4);
        }
        return Err(Clause::Ipv6Header);
    }
    fields.ip_version = Some(frame[ETH_HEADER] >> 4);
    fields.protocol = Some(frame[ETH_HEADER + 6]);
    if frame[ETH_HEADER] >> 4 != 6 {
        return Err(Clause::Ipv6Version);
    }
    if frame[ETH_HEADER + 6] != PROTO_UDP {
        return Err(Clause::Ipv6NextHeader);
    }
    Ok(ETH_HEADER + IPV6_HEADER)
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
