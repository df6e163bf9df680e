/* Token bucket at scale 10^6 (1000 tokens/s refill exactly dt ns worth), clamped to the
 * limit first, the elapsed time then capped at the room left; state and lock in libbpf's
 * private section .data.rl, header structs, early returns. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(rl) struct bpf_spin_lock lock;
private(rl) __s64 tokens = 100000000;
private(rl) __u64 last;
const volatile __s64 __scale_tokens = 1000000;

SEC("xdp")
int limiter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end) return XDP_PASS;
	struct udphdr *udp;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5) return XDP_PASS;
		if ((void *)ip + ip->ihl * 4 > end) return XDP_PASS;
		if (ip->frag_off & bpf_htons(0x3fff) || ip->protocol != IPPROTO_UDP) return XDP_PASS;
		udp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP) return XDP_PASS;
		udp = (void *)(ip6 + 1);
	} else return XDP_PASS;
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(9000)) return XDP_PASS;
	__u16 len = bpf_ntohs(udp->len);
	if (len < 8 || (void *)udp + len > end) return XDP_PASS;

	__u64 now = bpf_ktime_get_ns();
	int verdict;
	bpf_spin_lock(&lock);
	__s64 t = tokens;
	if (t > 100000000) t = 100000000;
	__u64 gap = (__u64)100000000 - (__u64)t;
	__u64 dt = now - last;
	if (dt > gap) dt = gap;
	t = (__s64)((__u64)t + dt);
	last = now;
	if (t >= 1000000) {
		t -= 1000000;
		verdict = XDP_PASS;
	} else {
		verdict = XDP_DROP;
	}
	tokens = t;
	bpf_spin_unlock(&lock);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
