/* The deny list (sizes 0 and 13, never written: folded into comparisons), a counter of
 * refusals, and a ring buffer of every size seen with its length global. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} sizes SEC(".maps");

__u64 sizes_len;
__s64 refused;

SEC("xdp")
int acl_structs(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5 ||
		    (void *)ip + ip->ihl * 4 > end)
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
	__u16 length = bpf_ntohs(udp->len);

	if (length < 8 || (void *)udp + length > end)
		return XDP_PASS;
	__s64 len = length - 8;

	bpf_ringbuf_output(&sizes, &len, sizeof(len), 0);
	__sync_fetch_and_add(&sizes_len, 1);
	if (len == 0 || len == 13) {
		__sync_fetch_and_add(&refused, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
