/* Fault injection on large requests: one draw r; r < 0.5 and r < 0.1 and a payload over 100
 * bytes drops. Nested conditions as the policy writes them. */
#include "../common.h"

SEC("xdp")
int fault_condition_nested(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u32 r = bpf_get_prandom_u32();

	if (r < 0x80000000u) {              /* r < 0.5 */
		if (r < 429496730u && payload > 100) /* r < 0.1: ceil(0.1 * 2^32) */
			return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
