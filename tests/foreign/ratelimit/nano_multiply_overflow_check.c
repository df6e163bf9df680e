/* Token bucket at scale 10^9 (one token is 10^9): each ns adds 1000 units, so the refill
 * multiplies, with the overflow of dt * 1000 checked first; lock in .bss beside the state. */
#include "../common.h"

#define LIMIT 100000000000LL /* 100 tokens */
#define ONE 1000000000LL
#define PER_NS 1000ULL

struct bpf_spin_lock lock;
__s64 tokens = LIMIT;
__u64 last;
const volatile __s64 __scale_tokens = 1000000000;

SEC("xdp")
int ratelimit_nano(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	int verdict = XDP_DROP;

	bpf_spin_lock(&lock);
	__u64 dt = now - last;
	__s64 t = tokens;

	if (t >= LIMIT) {
		t = LIMIT;
	} else {
		__u64 room = (__u64)LIMIT - (__u64)t;

		if (dt > ~0ULL / PER_NS || dt * PER_NS >= room)
			t = LIMIT;
		else
			t = (__s64)((__u64)t + dt * PER_NS);
	}
	last = now;
	if (t >= ONE) {
		t -= ONE;
		verdict = XDP_PASS;
	}
	tokens = t;
	bpf_spin_unlock(&lock);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
