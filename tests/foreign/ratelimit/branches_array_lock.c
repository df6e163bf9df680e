/* Token bucket at scale 10^6, refill after the fact with branches: a full bucket stays full,
 * otherwise it fills when dt reaches the room left; the lock in a one-entry array map. */
#include "../common.h"

#define LIMIT 100000000LL /* 100 tokens */
#define ONE 1000000LL

struct cell {
	struct bpf_spin_lock lock;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cell);
} bucket_lock SEC(".maps");

__s64 tokens = LIMIT;
__u64 last;
const volatile __s64 __scale_tokens = 1000000;

SEC("xdp")
int ratelimit_branches(struct xdp_md *ctx)
{
	__u32 payload;
	__u32 zero = 0;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	struct cell *cell = bpf_map_lookup_elem(&bucket_lock, &zero);

	if (!cell)
		return XDP_PASS;
	bpf_spin_lock(&cell->lock);
	__s64 t = tokens;
	__u64 dt = now - last;

	if (t >= LIMIT)
		t = LIMIT;
	else if (dt >= (__u64)LIMIT - (__u64)t)
		t = LIMIT;
	else
		t = (__s64)((__u64)t + dt);
	last = now;
	int pass = t >= ONE;

	if (pass)
		t -= ONE;
	tokens = t;
	bpf_spin_unlock(&cell->lock);
	return pass ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
