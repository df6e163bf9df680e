/* Token bucket at scale 10^6 with the header structs and goto paths: the sum first where it
 * cannot overflow, then the cap; lock in .data.rate. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define private(name) SEC(".data." #name) __attribute__((aligned(8)))

private(rate) struct bpf_spin_lock rate_lock;
private(rate) __s64 tokens = 100000000;
private(rate) __u64 last;
const volatile __s64 __scale_tokens = 1000000;

SEC("xdp")
int ratelimit_goto(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	int verdict = XDP_DROP;

	if ((void *)(eth + 1) > end)
		goto pass;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			goto pass;
		if ((void *)ip + ip->ihl * 4 > end || (ip->frag_off & bpf_htons(0x3fff)))
			goto pass;
		if (ip->protocol != IPPROTO_UDP)
			goto pass;
		udp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			goto pass;
		udp = (void *)(ip6 + 1);
	} else {
		goto pass;
	}
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(9000))
		goto pass;
	if (bpf_ntohs(udp->len) < 8 || (void *)udp + bpf_ntohs(udp->len) > end)
		goto pass;

	__u64 now = bpf_ktime_get_ns();

	bpf_spin_lock(&rate_lock);
	__s64 t = tokens;
	__u64 dt = now - last;

	last = now;
	if (t >= 100000000)
		goto full;
	if (dt >= (__u64)100000000 - (__u64)t)
		goto full;
	t = (__s64)((__u64)t + dt);
	goto take;
full:
	t = 100000000;
take:
	if (t >= 1000000) {
		t -= 1000000;
		verdict = XDP_PASS;
	}
	tokens = t;
	bpf_spin_unlock(&rate_lock);
	return verdict;
pass:
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
