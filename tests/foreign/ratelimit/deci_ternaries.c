/* Token bucket at scale 10^7 (each ns adds 10 units) in ternaries; lock in global data. */
#include "../common.h"

#define LIMIT 1000000000LL
#define ONE 10000000LL
#define MIN(a, b) ((a) < (b) ? (a) : (b))

struct bpf_spin_lock l;
__u64 last;
__s64 tokens = LIMIT;
const volatile __s64 __scale_tokens = 10000000;

SEC("xdp")
int ratelimit_ternary(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();

	bpf_spin_lock(&l);
	__s64 t = MIN(tokens, LIMIT);
	__u64 room = (__u64)LIMIT - (__u64)t;
	__u64 dt = now - last;
	__s64 filled = dt >= room / 10 + (room % 10 ? 1 : 0) ? LIMIT : (__s64)((__u64)t + 10 * dt);
	int ok = filled >= ONE;

	tokens = ok ? filled - ONE : filled;
	last = now;
	bpf_spin_unlock(&l);
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
