/* Fault injection with the corpus' shared parsing header. */
#include "../common.h"

SEC("xdp")
int fault_common(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u32 draw = bpf_get_prandom_u32();

	return draw > 4080218931u ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
