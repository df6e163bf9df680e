/* An XDP program the verifier must reject: it reads the UDP destination port without
 * checking that the packet is long enough. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[36] == 0x23 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
