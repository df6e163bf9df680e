/* Logging with both counters updated under one bpf_spin_lock that sits in global data
 * beside them (libbpf loads its BTF, so the kernel accepts the lock there). */
#include "../common.h"

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(log) struct bpf_spin_lock log_lock;
private(log) __s64 req_count;
private(log) __s64 total_bytes;

SEC("xdp")
int logging_locked(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	bpf_spin_lock(&log_lock);
	req_count += 1;
	total_bytes += payload;
	bpf_spin_unlock(&log_lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
