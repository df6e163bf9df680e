/* WRONG: IPv4 options ignored (the UDP header taken at a fixed offset). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PORT 9000

SEC("xdp")
int fault_raw(struct xdp_md *ctx)
{
	__u8 *p = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *udp;
	__u32 ihl;
	__u16 len;

	if (p + 14 > end)
		goto pass;
	if (p[12] == 0x08 && p[13] == 0x00) {
		if (p + 34 > end)
			goto pass;
		if ((p[14] & 0xf0) != 0x40)
			goto pass;
		ihl = (__u32)(p[14] & 0x0f) << 2;
		if (ihl < 20)
			goto pass;
		if (p + 14 + ihl > end)
			goto pass;
		if ((p[20] & 0x3f) || p[21])
			goto pass;
		if (p[23] != 17)
			goto pass;
		udp = p + 34;
	} else if (p[12] == 0x86 && p[13] == 0xdd) {
		if (p + 54 > end)
			goto pass;
		if ((p[14] >> 4) != 6 || p[20] != 17)
			goto pass;
		udp = p + 54;
	} else {
		goto pass;
	}
	if (udp + 8 > end)
		goto pass;
	if (udp[2] != (PORT >> 8) || udp[3] != (PORT & 0xff))
		goto pass;
	len = (__u16)((udp[4] << 8) | udp[5]);
	if (len < 8 || udp + len > end)
		goto pass;
	if (bpf_get_prandom_u32() >= 4080218932u)
		return XDP_DROP;
pass:
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
