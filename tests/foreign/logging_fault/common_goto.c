/* Logging + fault injection with the shared header and a goto to the drop path. */
#include "../common.h"

__s64 req_count = 0;
__s64 drop_count = 0;

SEC("xdp")
int logging_fault_common(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		goto pass;
	__sync_fetch_and_add(&req_count, 1);
	if (bpf_get_prandom_u32() >= 4080218932u)
		goto drop;
pass:
	return XDP_PASS;
drop:
	__sync_fetch_and_add(&drop_count, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
