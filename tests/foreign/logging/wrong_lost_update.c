/* WRONG: the lock is taken for total_bytes only: req_count is a plain read-modify-write
 * that concurrent requests can lose (a race). */
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
	req_count += 1;
	bpf_spin_lock(&log_lock);
	total_bytes += payload;
	bpf_spin_unlock(&log_lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
