//! LANGUAGE.md §4.1 as a predicate over the symbolic packet: the check proves the program's
//! packet parsing too, not only its policy logic.

use z3::ast::{Array, BV, Bool};

fn byte(packet: &Array, at: &BV) -> BV {
    packet.select(at).as_bv().expect("a byte")
}

fn at(n: u64) -> BV {
    BV::from_u64(n, 64)
}

fn be16(packet: &Array, offset: &BV) -> BV {
    byte(packet, offset).concat(byte(packet, &offset.bvadd(at(1))))
}

/// Whether the frame is an RPC to `port`, and its payload length (UDP length − 8) as a
/// 64-bit number (meaningful where it is an RPC).
pub fn rpc(packet: &Array, len: &BV, port: u16) -> (Bool, BV) {
    let has = |n: &BV| n.bvule(len);
    let ethertype = be16(packet, &at(12));
    let is_v4 = ethertype.eq(BV::from_u64(0x0800, 16));
    let is_v6 = ethertype.eq(BV::from_u64(0x86DD, 16));

    let version_ihl = byte(packet, &at(14));
    let ihl = version_ihl.extract(3, 0).zero_ext(60);
    let ip_end = at(14).bvadd(ihl.bvmul(at(4)));
    let v4_ok = Bool::and(&[
        has(&at(15)),
        version_ihl.extract(7, 4).eq(BV::from_u64(4, 4)),
        ihl.bvuge(at(5)),
        has(&ip_end),
        be16(packet, &at(20))
            .bvand(BV::from_u64(0x3FFF, 16))
            .eq(BV::from_u64(0, 16)),
        byte(packet, &at(23)).eq(BV::from_u64(17, 8)),
    ]);
    let v6_ok = Bool::and(&[
        has(&at(54)),
        byte(packet, &at(14)).extract(7, 4).eq(BV::from_u64(6, 4)),
        byte(packet, &at(20)).eq(BV::from_u64(17, 8)),
    ]);
    // The UDP checks once per IP version, each at its own offsets (no `ite` on the offset:
    // reads at the same offsets as the program's make the proof propagation, not search).
    let udp_checks = |udp: &BV| {
        let udp_len = be16(packet, &udp.bvadd(at(4))).zero_ext(48);
        let ok = Bool::and(&[
            has(&udp.bvadd(at(8))),
            be16(packet, &udp.bvadd(at(2))).eq(BV::from_u64(u64::from(port), 16)),
            udp_len.bvuge(at(8)),
            udp.bvadd(&udp_len).bvule(len),
        ]);
        (ok, udp_len)
    };
    let (v4_udp_ok, v4_len) = udp_checks(&ip_end);
    let (v6_udp_ok, v6_len) = udp_checks(&at(54));
    let v4 = Bool::and(&[is_v4.clone(), v4_ok, v4_udp_ok]);
    let v6 = Bool::and(&[is_v6, v6_ok, v6_udp_ok]);
    let is_rpc = Bool::and(&[has(&at(14)), Bool::or(&[v4, v6])]);
    let udp_len = is_v4.ite(&v4_len, &v6_len);
    (is_rpc, udp_len.bvsub(at(8)))
}
