//! How the symbolic executor merges paths, seen from outside, on what clang makes of a
//! program.

mod support;

use simplebpf_checker::symexec;
use simplebpf_compiler::cancel::Cancel;
use simplebpf_compiler::clang::ClangOptions;
use simplebpf_compiler::object_model::BpfObject;

/// A counter one branch adds to: after the join it is one value (an `ite` of the sum and the
/// stored value), not eight bytes each chosen apart. Byte-wise merging cost the solver
/// 0.4 million resource units per such counter (n matches on the payload size). The program
/// is the optimizer's fused filter with two of those matches (its registers agree where the
/// branches join, so the states merge; in simpler programs clang often leaves a dead pointer
/// in one branch's register and a number in the other's, and they stay apart).
#[test]
fn a_value_one_path_stored_merges_whole() {
    let c = r#"
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* State (docs/language.md §4.3). */
__s64 m0;	/* int */
__s64 m1;	/* int */

#define SERVICE_PORT 9000

/* docs/language.md §4.1: Ethernet II; IPv4 with any valid IHL and no fragment, or IPv6 without
 * extension headers; UDP to SERVICE_PORT whose length field is at least 8 and within the
 * frame. Anything else is not an RPC. Fields are read fused: see the build's strategy. */
static __always_inline int sb_rpc_payload(struct xdp_md *ctx, __s64 *payload_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* The end of the UDP header behind the smallest IPv4 header: every fixed-offset read
	 * below is within it. */
	void *end = data + 42;

	if (end > data_end)
		return 0;
	__u32 v4 = bpf_ntohl(*(__u32 *)(data + 12)) - 0x08004500;

	/* Empty barriers: without them clang keeps a second copy of the word for the IPv6 test
	 * and recomputes the end from `data`, two instructions more. */
	asm volatile("" : "+r"(v4));
	asm volatile("" : "+r"(end));
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
	__u32 length = bpf_ntohl(*(__u32 *)(end - 6)) - ((SERVICE_PORT << 16) | 8);

	if (length > 0xFFF7 || end + length > data_end)
		return 0;
	*payload_len = length;
	return 1;
}

SEC("xdp")
int count(struct xdp_md *ctx)
{
	__s64 payload_len;

	if (!sb_rpc_payload(ctx, &payload_len))
		return XDP_PASS;	/* not an RPC: untouched */
	if ((payload_len > 10LL)) {
		__sync_fetch_and_add(&m0, 1LL);
	}
	if ((payload_len > 20LL)) {
		__sync_fetch_and_add(&m1, 1LL);
	}
	return XDP_PASS;	/* forward */
}

char LICENSE[] SEC("license") = "GPL";
"#;
    let elf = support::compile(c, &ClangOptions::default());
    let object = BpfObject::parse(&elf).expect("an object");
    let program = object.xdp_program(None).expect("one XDP program");
    let fields = [(".bss", 0, 8), (".bss", 8, 8)];
    let inputs = symexec::fresh_inputs(&object, &fields);
    let execution = symexec::execute(
        &program.insns,
        &inputs,
        std::time::Instant::now() + std::time::Duration::from_secs(60),
        &Cancel::new(),
        &|_| None,
    )
    .expect("the executor runs it");
    let mut seen = 0;
    for path in &execution.paths {
        let Some(bss) = path.sections.get(".bss") else {
            continue;
        };
        for (offset, value) in &bss.cells {
            seen += 1;
            assert!(
                (*offset == 0 || *offset == 8) && value.get_size() == 64,
                "a cell of {} bits at .bss+{offset}: the counter was merged in pieces",
                value.get_size()
            );
        }
    }
    // Without a merge there would be nothing to see: some path holds both counters.
    let merged = execution.paths.iter().any(|path| {
        path.sections
            .get(".bss")
            .is_some_and(|bss| bss.cells.len() == 2)
    });
    assert!(
        merged && seen >= 2,
        "no path holds both counters ({seen} cells)"
    );
}
