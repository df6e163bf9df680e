//! The fixed parts of every generated program: includes, the RPC filter of LANGUAGE.md §4.1,
//! the lock map and the small helpers the handler calls.

use super::handler::Helpers;
use super::strategy::FilterShape;

pub const INCLUDES: &str = "\
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
";

/// `sb_rpc_payload`: 1 and the payload length when the frame is an RPC request to the service
/// port, 0 for every other frame (which then passes untouched).
///
/// `min_payload`, with the fused shape only, folds the handler's first test: a payload of
/// fewer bytes is refused by the filter (`reshape::fold_min_payload` says when that is
/// exact).
pub fn rpc_filter(port: u16, shape: FilterShape, min_payload: u64) -> String {
    let (how, body, min_payload) = match (shape, min_payload) {
        (FilterShape::PerField, _) => ("", PER_FIELD_BODY.to_string(), String::new()),
        (FilterShape::Fused, 0) => (
            FUSED_HOW,
            format!("{FUSED_BODY}{FUSED_LENGTH}"),
            String::new(),
        ),
        (FilterShape::Fused, _) => (
            FUSED_HOW,
            format!("{FUSED_BODY}{FUSED_LENGTH_AT_LEAST}"),
            format!("#define MIN_PAYLOAD {min_payload}\n"),
        ),
    };
    format!(
        "\
#define SERVICE_PORT {port}
{min_payload}
/* docs/language.md §4.1: Ethernet II; IPv4 with any valid IHL and no fragment, or IPv6 without
 * extension headers; UDP to SERVICE_PORT whose length field is at least 8 and within the
 * frame. Anything else is not an RPC.{how} */
static __always_inline int sb_rpc_payload(struct xdp_md *ctx, __s64 *payload_len)
{{
\tvoid *data = (void *)(long)ctx->data;
\tvoid *data_end = (void *)(long)ctx->data_end;
{body}}}
"
    )
}

const FUSED_HOW: &str = " Fields are read fused: see the build's strategy.";

/// The filter with fused reads. The constants: bytes 12–15 as a big-endian word are
/// 0x0800_45XX…0x0800_4FXX for IPv4 version 4 with IHL 5–15, and 0x86DD_6XXX for IPv6
/// version 6; bits 6–9 of the IPv4 word minus 0x0800_4500 are (IHL − 5) × 4, and the IPv6
/// test is made on the same difference (0x86DD_6000 − 0x0800_4500 = 0x7EDD_1B00) so that no
/// second copy of the word is kept. Bytes 20–23 read little-endian are `frag_off`, TTL and
/// protocol, so the mask keeps the fragment bits and the protocol. One pointer, the end of
/// the UDP header, is moved and checked; the UDP word (port, length) is read behind it, and
/// that word minus (port, 8) is the payload length exactly when the port matches and the
/// length is at least 8.
// The first line's tab is written out: a line continuation would eat it.
const FUSED_BODY: &str =
    "\t/* The end of the UDP header behind the smallest IPv4 header: every fixed-offset read
	 * below is within it. */
	void *end = data + 42;

	if (end > data_end)
		return 0;
	__u32 v4 = bpf_ntohl(*(__u32 *)(data + 12)) - 0x08004500;

	/* Empty barriers: without them clang keeps a second copy of the word for the IPv6 test
	 * and recomputes the end from `data`, two instructions more. */
	asm volatile(\"\" : \"+r\"(v4));
	asm volatile(\"\" : \"+r\"(end));
	if (v4 <= 0x0AFF) {
		if ((*(__u32 *)(data + 20) & bpf_htonl(0x3FFF00FF)) != bpf_htonl(IPPROTO_UDP))
			return 0;
		end += (v4 >> 6) & 0x3C;
	} else if (v4 - 0x7EDD1B00 <= 0x0FFF) {
		/* The next header is within the first check; the rest of the fixed IPv6 header
		 * is covered by the check of the UDP header's end below (54 + 8 = 62 bytes). */
		if (*(__u8 *)(data + 20) != IPPROTO_UDP)
			return 0;
		end += 20;
	} else {
		return 0;
	}
	if (end > data_end)
		return 0;
";

/// The fused filter's last step: the UDP word minus (port, 8) is the payload length.
const FUSED_LENGTH: &str =
    "\t__u32 length = bpf_ntohl(*(__u32 *)(end - 6)) - ((SERVICE_PORT << 16) | 8);

	if (length > 0xFFF7 || end + length > data_end)
		return 0;
	*payload_len = length;
	return 1;
";

/// The same when a payload shorter than `MIN_PAYLOAD` ends as a non-RPC does: the word minus
/// (port, 8 + MIN_PAYLOAD) is in range exactly when the port matches and the payload is long
/// enough, so one range check refuses both.
const FUSED_LENGTH_AT_LEAST: &str =
    "\t/* The payload length minus MIN_PAYLOAD: a shorter payload ends as a non-RPC does (the
	 * handler forwards it untouched), so the range check refuses it with the rest. */
	__u32 length = bpf_ntohl(*(__u32 *)(end - 6)) - ((SERVICE_PORT << 16) | (8 + MIN_PAYLOAD));

	if (length > 0xFFF7 - MIN_PAYLOAD || end + MIN_PAYLOAD + length > data_end)
		return 0;
	*payload_len = length + MIN_PAYLOAD;
	return 1;
";

/// The filter through the kernel's header structs, one bounds check per header.
const PER_FIELD_BODY: &str = "\tstruct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return 0;
		if (ip->version != 4 || ip->ihl < 5)
			return 0;
		if ((void *)ip + ip->ihl * 4 > data_end)
			return 0;
		if (ip->frag_off & bpf_htons(0x3fff))
			return 0;
		if (ip->protocol != IPPROTO_UDP)
			return 0;
		udp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return 0;
		udp = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	if ((void *)(udp + 1) > data_end)
		return 0;
	if (udp->dest != bpf_htons(SERVICE_PORT))
		return 0;
	__u16 length = bpf_ntohs(udp->len);

	if (length < sizeof(*udp) || (void *)udp + length > data_end)
		return 0;
	*payload_len = length - sizeof(*udp);
	return 1;
";

pub const LOCK_MAP: &str = "\
/* The lock of docs/language.md §4.5. It lives in a one-entry array map because the kernel wants
 * BTF for any map that holds a bpf_spin_lock, and aya 0.14 creates global-data maps without
 * BTF (docs/backend.md). */
struct sb_lock_cell {
	struct bpf_spin_lock lock;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sb_lock_cell);
} sb_lock SEC(\".maps\");
";

pub const LOCK_GLOBAL: &str = "\
/* The lock of docs/language.md §4.5, in global data of its own section: the loader must create
 * that section's map with its BTF, as libbpf does (docs/backend.md). */
struct bpf_spin_lock sb_lock SEC(\".data.sb_lock\");
";

pub const TEST_HOOKS: &str = "\
/* TEST BUILD ONLY: draws and time come from these globals, which the test harness fills with
 * the values it gives the interpreter. A shipped object never contains them. */
__u32 sb_test_draws[16];
__u32 sb_test_draw_next;
__u64 sb_test_now;

static __always_inline __u32 sb_test_draw(void)
{
	__u32 next = sb_test_draw_next++;

	return sb_test_draws[next & 15];
}
";

pub fn helpers(used: Helpers) -> String {
    let mut out = String::new();
    if used.div_s64 {
        out.push_str(
            "\
/* int division truncates toward zero and x / 0 == 0 (§3.3), without signed BPF division. */
static __always_inline __s64 sb_div_s64(__s64 a, __s64 b)
{
	if (b == 0)
		return 0;
	__u64 ua = a < 0 ? -(__u64)a : (__u64)a;
	__u64 ub = b < 0 ? -(__u64)b : (__u64)b;
	__u64 q = ua / ub;

	return (a < 0) != (b < 0) ? (__s64)(0 - q) : (__s64)q;
}

",
        );
    }
    if used.div_u64 {
        out.push_str(
            "\
static __always_inline __u64 sb_div_u64(__u64 a, __u64 b)
{
	return b == 0 ? 0 : a / b;
}

",
        );
    }
    if used.add_capped {
        out.push_str(
            "\
/* min(cap, x + k * t), exact for every x and t even where x + k * t leaves 64 bits: at or
 * above the cap stays at the cap; below it, the sum reaches the cap exactly when
 * t * k >= cap - x (t >= ceil((cap - x) / k)), and otherwise stays below cap (so it fits).
 * t * k is compared without overflow and without a division at run time: past ~0 / k (a
 * constant once inlined) the product exceeds every gap. */
static __always_inline __s64 sb_add_capped(__s64 x, __u64 t, __u64 k, __s64 cap)
{
	if (x >= cap)
		return cap;
	__u64 gap = (__u64)cap - (__u64)x;

	if (t > ~0ULL / k || t * k >= gap)
		return cap;
	return (__s64)((__u64)x + t * k);
}

",
        );
    }
    out
}
