/* Logging in libbpf's style over vmlinux.h, with a switch on the EtherType. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

__s64 req_count SEC(".bss");
__s64 total_bytes SEC(".bss");

SEC("xdp")
int logging_vmlinux(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > data_end)
		return 2;
	switch (bpf_ntohs(eth->h_proto)) {
	case ETH_P_IP: {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5)
			return 2;
		if ((void *)iph + iph->ihl * 4 > data_end || (bpf_ntohs(iph->frag_off) & 0x3fff) ||
		    iph->protocol != 17)
			return 2;
		udp = (void *)iph + iph->ihl * 4;
		break;
	}
	case ETH_P_IPV6: {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end || ip6h->version != 6 || ip6h->nexthdr != 17)
			return 2;
		udp = (void *)(ip6h + 1);
		break;
	}
	default:
		return 2;
	}
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(9000))
		return 2;
	__u16 len = bpf_ntohs(udp->len);

	if (len < 8 || (void *)udp + len > data_end)
		return 2;
	__sync_fetch_and_add(&req_count, 1);
	__sync_fetch_and_add(&total_bytes, len - 8);
	return 2;
}

char LICENSE[] SEC("license") = "GPL";
