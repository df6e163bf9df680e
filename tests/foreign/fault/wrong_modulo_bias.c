/* WRONG: a modulo-biased draw (prandom % 100 < 95 is not randomf(0, 1) < 0.95). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int fault_structs(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			return XDP_PASS;
		if ((void *)ip + ip->ihl * 4 > end)
			return XDP_PASS;
		if ((ip->frag_off & bpf_htons(0x3fff)) || ip->protocol != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(9000))
		return XDP_PASS;
	__u16 len = bpf_ntohs(udp->len);

	if (len < sizeof(*udp) || (void *)udp + len > end)
		return XDP_PASS;
	/* randomf(0, 1) < 0.95  <=>  u < ceil(0.95 * 2^32) */
	if (bpf_get_prandom_u32() % 100 < 95)
		return XDP_PASS;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
