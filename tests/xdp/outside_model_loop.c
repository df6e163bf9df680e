/* An XDP program outside the checker's model: a loop whose trip count depends on the packet
 * with no bound (the kernel verifier would refuse it too). `simplebpf check` must answer
 * "unknown" with the reason, never guess. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int collatz(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u64 v, steps = 0;

	if (data + 8 > end)
		return XDP_PASS;
	v = *(__u64 *)data;
	while (v > 1) {
		v = (v & 1) ? 3 * v + 1 : v / 2;
		steps++;
	}
	return steps & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
