/* WRONG: size(v) is not advanced. */
#include "../common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} sizes SEC(".maps");

__u64 sizes_len = 0;
__s64 refused = 0;

SEC("xdp")
int acl_switch(struct xdp_md *ctx)
{
	__u32 payload;

	if (!rpc_len(ctx, 9000, &payload))
		return XDP_PASS;
	__s64 record = payload;

	bpf_ringbuf_output(&sizes, &record, sizeof(record), 0);

	switch (payload) {
	case 0:
	case 13:
		__sync_fetch_and_add(&refused, 1);
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}

char LICENSE[] SEC("license") = "GPL";
