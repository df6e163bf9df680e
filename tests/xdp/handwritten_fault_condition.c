/* A hand-written XDP program for examples/bench/fault_condition.appnet, following the layout contract
 * of LANGUAGE.md §4.3: `simplebpf check` proves it. prob = 0.1 and min_size = 100 are never
 * written, so they are folded: r < 0.5 is u < 2^31, r < 0.1 is u < 429496730. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define SERVICE_PORT 9000

SEC("xdp")
int fault_condition(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
			return XDP_PASS;
		if ((void *)ip + ip->ihl * 4 > data_end)
			return XDP_PASS;
		if ((ip->frag_off & bpf_htons(0x3fff)) || ip->protocol != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(SERVICE_PORT))
		return XDP_PASS;

	__u16 len = bpf_ntohs(udp->len);

	if (len < sizeof(*udp) || (void *)udp + len > data_end)
		return XDP_PASS;
	__u32 u = bpf_get_prandom_u32();

	if (u < 429496730u && len - sizeof(*udp) > 100)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
