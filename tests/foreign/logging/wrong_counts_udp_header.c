/* WRONG: total_bytes counts the UDP header too. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__s64 req_count __attribute__((section(".data"))) = 0;
__s64 total_bytes __attribute__((section(".data"))) = 0;

static __always_inline __u16 swap16(__u16 x)
{
	return (__u16)((x << 8) | (x >> 8));
}

SEC("xdp")
int logging_raw(struct xdp_md *ctx)
{
	__u8 *p = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u8 *udp = 0;

	if (p + 14 <= end) {
		__u16 type = swap16(*(__u16 *)(p + 12));

		if (type == 0x0800 && p + 34 <= end && (p[14] >> 4) == 4) {
			__u32 ihl = p[14] & 0xf;

			if (ihl >= 5 && p + 14 + ihl * 4 <= end &&
			    (swap16(*(__u16 *)(p + 20)) & 0x3fff) == 0 && p[23] == 17)
				udp = p + 14 + ihl * 4;
		} else if (type == 0x86dd && p + 54 <= end && (p[14] >> 4) == 6 && p[20] == 17) {
			udp = p + 54;
		}
	}
	if (udp && udp + 8 <= end && swap16(*(__u16 *)(udp + 2)) == 9000) {
		__u16 len = swap16(*(__u16 *)(udp + 4));

		if (len >= 8 && udp + len <= end) {
			__sync_fetch_and_add(&req_count, 1);
			__sync_fetch_and_add(&total_bytes, (__s64)len);
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
