/* Fault injection on large requests with the policy's constants kept as read-only globals
 * of the same names (prob as a fixed-point value with its scale, min_size as an int). */
#include "../common.h"

const volatile __s64 prob = 1;           /* 0.1 at scale 10 */
const volatile __s64 __scale_prob = 10;
const volatile __s64 min_size = 100;

SEC("xdp")
int fault_condition_rodata(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__u64 r = bpf_get_prandom_u32();

	/* r / 2^32 < prob / scale  <=>  r * scale < prob * 2^32 */
	if (r < (1ull << 31) && r * __scale_prob < ((__u64)prob << 32) && (__s64)payload > min_size)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
