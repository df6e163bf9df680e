/* Token bucket at scale 10^6 in signed arithmetic: the room as a signed difference where it
 * cannot overflow (t within [0, LIMIT]), a very negative stored value handled on its own. */
#include "../common.h"

#define LIMIT 100000000LL
#define ONE 1000000LL

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_spin_lock);
} rl_lock SEC(".maps");

__s64 tokens = LIMIT;
__u64 last;
const volatile __s64 __scale_tokens = 1000000;

SEC("xdp")
int ratelimit_signed(struct xdp_md *ctx)
{
	__u32 payload;
	__u32 key = 0;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__s64 now = (__s64)bpf_ktime_get_ns();
	struct bpf_spin_lock *lock = bpf_map_lookup_elem(&rl_lock, &key);

	if (!lock)
		return XDP_PASS;
	bpf_spin_lock(lock);
	__s64 t = tokens;
	__u64 dt = (__u64)now - last;

	if (t > LIMIT)
		t = LIMIT;
	if (t >= 0) {
		__s64 room = LIMIT - t;

		t = dt >= (__u64)room ? LIMIT : t + (__s64)dt;
	} else {
		/* room > LIMIT: as a u64 it is exact */
		__u64 room = (__u64)LIMIT - (__u64)t;

		t = dt >= room ? LIMIT : (__s64)((__u64)t + dt);
	}
	last = (__u64)now;
	__s64 after = t - ONE;
	int pass = after >= 0;

	tokens = pass ? after : t;
	bpf_spin_unlock(lock);
	return pass ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
