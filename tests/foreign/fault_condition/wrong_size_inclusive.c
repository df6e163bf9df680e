/* WRONG: the size compared with >= instead of >. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MIN_SIZE 100
#define THRESHOLD 429496730u

SEC("xdp")
int fault_condition_simplified(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP): {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5 ||
		    (void *)ip + ip->ihl * 4 > end)
			return XDP_PASS;
		if ((ip->frag_off & bpf_htons(0x3fff)) || ip->protocol != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)ip + ip->ihl * 4;
		break;
	}
	case bpf_htons(ETH_P_IPV6): {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip6 + 1);
		break;
	}
	default:
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(9000))
		return XDP_PASS;
	__u16 len = bpf_ntohs(udp->len);

	if (len < 8 || (void *)udp + len > end)
		return XDP_PASS;
	if (len - 8 < MIN_SIZE)
		return XDP_PASS;
	return bpf_get_prandom_u32() < THRESHOLD ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
