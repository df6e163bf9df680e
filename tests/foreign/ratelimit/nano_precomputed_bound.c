/* Token bucket at scale 10^9 that compares dt with the time the room takes to fill,
 * ceil(room / 1000), computed before any multiplication; lock in .data.bucket. */
#include "../common.h"

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(bucket) struct bpf_spin_lock bucket_lock;
private(bucket) __s64 tokens = 100000000000LL;
private(bucket) __u64 last;
const volatile __s64 __scale_tokens = 1000000000;

SEC("xdp")
int ratelimit_bound(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	int pass;

	bpf_spin_lock(&bucket_lock);
	__s64 t = tokens > 100000000000LL ? 100000000000LL : tokens;
	__u64 room = 100000000000ULL - (__u64)t;
	__u64 fill_after = room / 1000 + (room % 1000 != 0);
	__u64 dt = now - last;

	t = dt >= fill_after ? 100000000000LL : (__s64)((__u64)t + dt * 1000);
	last = now;
	pass = t >= 1000000000LL;
	tokens = pass ? t - 1000000000LL : t;
	bpf_spin_unlock(&bucket_lock);
	return pass ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
