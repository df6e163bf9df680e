/* Logging with the counters in a libbpf private section (.data.stats), C11 atomics. */
#include "../common.h"

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(stats) __s64 req_count = 0;
private(stats) __s64 total_bytes = 0;

SEC("xdp")
int logging_private(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__atomic_fetch_add(&req_count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&total_bytes, (__s64)payload, __ATOMIC_RELAXED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
