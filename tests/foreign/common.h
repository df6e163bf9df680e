/* Parsing helpers shared by several programs of this corpus: raw byte offsets, no header
 * structs. Returns 1 and the UDP payload length for an RPC to `port` (docs/language.md
 * §4.1), 0 for anything else. */
#ifndef FOREIGN_COMMON_H
#define FOREIGN_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ETH_LEN 14
#define IP6_LEN 40
#define UDP_LEN 8

static __always_inline __u16 be16_at(const __u8 *p)
{
	return ((__u16)p[0] << 8) | p[1];
}

static __always_inline int rpc_len(struct xdp_md *ctx, __u16 port, __u32 *payload)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	const __u8 *udp;

	if (data + ETH_LEN > end)
		return 0;
	__u16 type = be16_at(data + 12);

	if (type == 0x0800) {
		const __u8 *ip = data + ETH_LEN;

		if (ip + 20 > end)
			return 0;
		if ((ip[0] >> 4) != 4)
			return 0;
		__u32 hlen = (ip[0] & 0x0f) * 4;

		if (hlen < 20 || ip + hlen > end)
			return 0;
		if ((be16_at(ip + 6) & 0x3fff) != 0 || ip[9] != 17)
			return 0;
		udp = ip + hlen;
	} else if (type == 0x86dd) {
		const __u8 *ip6 = data + ETH_LEN;

		if (ip6 + IP6_LEN > end)
			return 0;
		if ((ip6[0] >> 4) != 6 || ip6[6] != 17)
			return 0;
		udp = ip6 + IP6_LEN;
	} else {
		return 0;
	}
	if (udp + UDP_LEN > end)
		return 0;
	if (be16_at(udp + 2) != port)
		return 0;
	__u16 length = be16_at(udp + 4);

	if (length < UDP_LEN || udp + length > end)
		return 0;
	*payload = length - UDP_LEN;
	return 1;
}

#endif
