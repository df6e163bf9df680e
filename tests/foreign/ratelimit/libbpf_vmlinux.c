/* Token bucket at scale 10^6, libbpf style over vmlinux.h, state and lock in .data.tb. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(tb) struct bpf_spin_lock tb_lock;
private(tb) __s64 tokens = 100000000;
private(tb) __u64 last;
const volatile __s64 __scale_tokens = 1000000;

static __always_inline bool is_rpc(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto == bpf_htons(0x0800)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5 ||
		    (void *)iph + iph->ihl * 4 > data_end)
			return false;
		if ((bpf_ntohs(iph->frag_off) & 0x3fff) || iph->protocol != 17)
			return false;
		udp = (void *)iph + iph->ihl * 4;
	} else if (eth->h_proto == bpf_htons(0x86DD)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end || ip6h->version != 6 || ip6h->nexthdr != 17)
			return false;
		udp = (void *)(ip6h + 1);
	} else {
		return false;
	}
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(9000))
		return false;
	__u16 len = bpf_ntohs(udp->len);

	return len >= 8 && (void *)udp + len <= data_end;
}

SEC("xdp")
int ratelimit_vmlinux(struct xdp_md *ctx)
{
	if (!is_rpc(ctx))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	enum xdp_action action = XDP_DROP;

	bpf_spin_lock(&tb_lock);
	__s64 t = tokens < 100000000 ? tokens : 100000000;
	__u64 room = 100000000ULL - (__u64)t;
	__u64 dt = now - last;

	t = (__s64)((__u64)t + (dt < room ? dt : room));
	last = now;
	if (t >= 1000000) {
		t -= 1000000;
		action = XDP_PASS;
	}
	tokens = t;
	bpf_spin_unlock(&tb_lock);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
