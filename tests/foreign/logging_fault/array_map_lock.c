/* Logging + fault injection with the lock as the value of a one-entry array map and the
 * counters in .bss; raw byte parsing. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct lock_cell {
	struct bpf_spin_lock lock;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lock_cell);
} counter_lock SEC(".maps");

__s64 req_count;
__s64 drop_count;

SEC("xdp")
int logging_fault_map_lock(struct xdp_md *ctx)
{
	__u8 *p = (__u8 *)(long)ctx->data, *end = (__u8 *)(long)ctx->data_end, *udp;

	if (p + 14 > end)
		return XDP_PASS;
	if (p[12] == 0x08 && p[13] == 0x00) {
		if (p + 34 > end || (p[14] >> 4) != 4 || (p[14] & 15) < 5)
			return XDP_PASS;
		if (p + 14 + (p[14] & 15) * 4 > end || (p[20] & 0x3f) || p[21] || p[23] != 17)
			return XDP_PASS;
		udp = p + 14 + (p[14] & 15) * 4;
	} else if (p[12] == 0x86 && p[13] == 0xdd) {
		if (p + 54 > end || (p[14] >> 4) != 6 || p[20] != 17)
			return XDP_PASS;
		udp = p + 54;
	} else {
		return XDP_PASS;
	}
	if (udp + 8 > end || udp[2] != 0x23 || udp[3] != 0x28)
		return XDP_PASS;
	__u16 len = (__u16)(udp[4] << 8 | udp[5]);

	if (len < 8 || udp + len > end)
		return XDP_PASS;
	__u32 draw = bpf_get_prandom_u32();
	__u32 zero = 0;
	struct lock_cell *cell = bpf_map_lookup_elem(&counter_lock, &zero);

	if (!cell)
		return XDP_PASS;
	bpf_spin_lock(&cell->lock);
	req_count += 1;
	if (draw >= 4080218932u)
		drop_count += 1;
	bpf_spin_unlock(&cell->lock);
	return draw >= 4080218932u ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
