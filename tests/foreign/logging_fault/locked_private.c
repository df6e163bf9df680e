/* Logging + fault injection, both counters under a lock kept with them in .data.counters;
 * the draw is taken before the lock (no helper calls inside it). */
#include "../common.h"

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(counters) struct bpf_spin_lock lock;
private(counters) __s64 req_count;
private(counters) __s64 drop_count;

SEC("xdp")
int logging_fault_locked(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	int drop = bpf_get_prandom_u32() >= 4080218932u;

	bpf_spin_lock(&lock);
	req_count++;
	if (drop)
		drop_count++;
	bpf_spin_unlock(&lock);
	return drop ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
