/* WRONG: IPv4 fragments are not refused. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP 17
#define XDP_DROP 1
#define XDP_PASS 2

const volatile __u16 service_port = 9000;

SEC("xdp")
int fault_libbpf(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end)
			return XDP_PASS;
		if (iph->version != 4 || iph->ihl < 5 || (void *)iph + iph->ihl * 4 > data_end)
			return XDP_PASS;
		if (0)
			return XDP_PASS;
		if (iph->protocol != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)iph + iph->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end || ip6h->version != 6 || ip6h->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip6h + 1);
	} else {
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > data_end || bpf_ntohs(udp->dest) != service_port)
		return XDP_PASS;
	__u16 len = bpf_ntohs(udp->len);

	if (len < 8 || (void *)udp + len > data_end)
		return XDP_PASS;
	return bpf_get_prandom_u32() < 4080218932u ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
