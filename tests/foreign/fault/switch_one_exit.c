/* Fault injection with a switch on the EtherType and a single exit. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define FAULT_BELOW 4080218932u /* the first draw that fails: ceil(0.95 * 2^32) */

SEC("xdp")
int fault_switch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp = 0;
	int action = XDP_PASS;

	if ((void *)(eth + 1) <= end) {
		switch (bpf_ntohs(eth->h_proto)) {
		case ETH_P_IP: {
			struct iphdr *ip = (void *)(eth + 1);

			if ((void *)(ip + 1) <= end && ip->version == 4 && ip->ihl >= 5 &&
			    (void *)ip + ip->ihl * 4 <= end && !(ip->frag_off & bpf_htons(0x3fff)) &&
			    ip->protocol == IPPROTO_UDP)
				udp = (void *)ip + ip->ihl * 4;
			break;
		}
		case ETH_P_IPV6: {
			struct ipv6hdr *ip6 = (void *)(eth + 1);

			if ((void *)(ip6 + 1) <= end && ip6->version == 6 &&
			    ip6->nexthdr == IPPROTO_UDP)
				udp = (void *)(ip6 + 1);
			break;
		}
		default:
			break;
		}
	}
	if (udp && (void *)(udp + 1) <= end && udp->dest == bpf_htons(9000)) {
		__u16 len = bpf_ntohs(udp->len);

		if (len >= sizeof(*udp) && (void *)udp + len <= end &&
		    bpf_get_prandom_u32() >= FAULT_BELOW)
			action = XDP_DROP;
	}
	return action;
}

char LICENSE[] SEC("license") = "GPL";
