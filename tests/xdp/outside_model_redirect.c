/* An XDP program outside the checker's model: it calls bpf_redirect, a helper the model
 * lacks, so `simplebpf check` must answer "unknown" and name it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int redirect_all(struct xdp_md *ctx)
{
	return bpf_redirect(1, 0);
}

char LICENSE[] SEC("license") = "GPL";
