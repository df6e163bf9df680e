/* The no-op policy: every packet passes, whatever it is; no parsing needed. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int null_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
