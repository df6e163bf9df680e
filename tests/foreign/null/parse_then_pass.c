/* The no-op policy, written by someone who parses first and then forwards anyway. */
#include "../common.h"

SEC("xdp")
int null_parse(struct xdp_md *ctx)
{
	__u32 payload;

	if (rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
