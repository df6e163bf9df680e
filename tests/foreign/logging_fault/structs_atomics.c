/* Logging + fault injection: the request counted on every RPC, the drop counted before it
 * drops, atomics in .bss, header structs. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

__s64 req_count;
__s64 drop_count;

SEC("xdp")
int logging_fault_structs(struct xdp_md *ctx)
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
	__sync_fetch_and_add(&req_count, 1);
	if (bpf_get_prandom_u32() < 4080218932u)
		return XDP_PASS;
	__sync_fetch_and_add(&drop_count, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
