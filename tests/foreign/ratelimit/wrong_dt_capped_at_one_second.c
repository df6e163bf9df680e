/* WRONG: the elapsed time capped at one second before the refill (a negative stored value
 * after a long idle gap refills too little). */
#include "../common.h"

struct bpf_spin_lock lock;
__s64 tokens = 100000000;
__u64 last;
const volatile __s64 __scale_tokens = 1000000;

SEC("xdp")
int ratelimit_capped_dt(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	int pass;

	bpf_spin_lock(&lock);
	__u64 dt = now - last;

	if (dt > 1000000000)
		dt = 1000000000;
	__s64 t = tokens + (__s64)dt;

	if (t > 100000000)
		t = 100000000;
	last = now;
	pass = t >= 1000000;
	tokens = pass ? t - 1000000 : t;
	bpf_spin_unlock(&lock);
	return pass ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
