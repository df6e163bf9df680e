/* Fault injection on large requests, libbpf style over vmlinux.h, one exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int fault_condition_vmlinux(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp = NULL;
	int verdict = 2;

	if ((void *)(eth + 1) > data_end)
		return verdict;
	if (eth->h_proto == bpf_htons(0x0800)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) <= data_end && iph->version == 4 && iph->ihl >= 5 &&
		    (void *)iph + iph->ihl * 4 <= data_end && !(bpf_ntohs(iph->frag_off) & 0x3fff) &&
		    iph->protocol == 17)
			udp = (void *)iph + iph->ihl * 4;
	} else if (eth->h_proto == bpf_htons(0x86DD)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) <= data_end && ip6h->version == 6 && ip6h->nexthdr == 17)
			udp = (void *)(ip6h + 1);
	}
	if (udp && (void *)(udp + 1) <= data_end && udp->dest == bpf_htons(9000)) {
		__u32 len = bpf_ntohs(udp->len);

		if (len >= 8 && (void *)udp + len <= data_end) {
			__u32 r = bpf_get_prandom_u32();

			if (r < 2147483648u && r < 429496730u && len > 108)
				verdict = 1;
		}
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
