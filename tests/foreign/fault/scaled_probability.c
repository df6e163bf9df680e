/* Fault injection that keeps the probability the policy stores: prob = 0.95 is never written,
 * so it may be folded; here it is kept as a read-only fixed-point constant and the draw
 * compared with the exact bound it implies (2^32 * 19 / 20, rounded up). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

static const __u64 numerator = 19, denominator = 20;

static __always_inline int parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != 17)
			return 0;
		udp = (void *)(ip6 + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			return 0;
		if ((void *)ip + ip->ihl * 4 > end || (ip->frag_off & bpf_htons(0x3fff)) ||
		    ip->protocol != 17)
			return 0;
		udp = (void *)ip + ip->ihl * 4;
	} else {
		return 0;
	}
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(9000))
		return 0;
	__u16 len = bpf_ntohs(udp->len);

	return len >= 8 && (void *)udp + len <= end;
}

SEC("xdp")
int fault_scaled(struct xdp_md *ctx)
{
	if (!parse(ctx))
		return XDP_PASS;
	__u64 u = bpf_get_prandom_u32();

	/* u / 2^32 < 19 / 20  <=>  20 u < 19 * 2^32 */
	return u * denominator < (numerator << 32) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
