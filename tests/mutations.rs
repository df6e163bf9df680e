//! The mutation suite: hand-made wrong programs, each the backend's correct C for an example
//! with one deliberate mistake. Every one must be refuted by `simplebpf check` with a
//! counterexample that the interpreter and the kernel (`BPF_PROG_TEST_RUN`, draws and time
//! patched in) both reproduce.

mod common;

use std::process::Command;

/// (example, what is wrong, the correct C text, its replacement).
const MUTATIONS: &[(&str, &str, &str, &str)] = &[
    // The random threshold (LANGUAGE.md §4.4).
    (
        "fault",
        "threshold off by one",
        "< 4080218932ULL",
        "< 4080218931ULL",
    ),
    (
        "fault",
        "threshold with <=",
        "< 4080218932ULL",
        "<= 4080218932ULL",
    ),
    (
        "fault",
        "modulo bias: prandom % 100 < 95",
        "bpf_get_prandom_u32() < 4080218932ULL",
        "bpf_get_prandom_u32() % 100 < 95",
    ),
    (
        "fault",
        "PASS and DROP swapped",
        "return XDP_PASS;\t/* forward */",
        "return XDP_DROP;\t/* forward */",
    ),
    // The RPC filter (§4.1).
    (
        "fault",
        "the wrong service port",
        "#define SERVICE_PORT 9000",
        "#define SERVICE_PORT 9001",
    ),
    (
        "fault",
        "port in host byte order",
        "udp->dest != bpf_htons(SERVICE_PORT)",
        "udp->dest != SERVICE_PORT",
    ),
    (
        "fault",
        "IPv6 not handled",
        "} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {",
        "} else if (0) {",
    ),
    (
        "fault",
        "IPv4 options ignored",
        "udp = (void *)ip + ip->ihl * 4;",
        "udp = (void *)(ip + 1);",
    ),
    (
        "fault",
        "fragments not refused",
        "\t\tif (ip->frag_off & bpf_htons(0x3fff))\n\t\t\treturn 0;\n",
        "",
    ),
    (
        "fault",
        "UDP length beyond the frame accepted",
        "if (length < sizeof(*udp) || (void *)udp + length > data_end)",
        "if (length < sizeof(*udp))",
    ),
    (
        "fault",
        "UDP length below 8 accepted",
        "if (length < sizeof(*udp) || (void *)udp + length > data_end)",
        "if ((void *)udp + length > data_end)",
    ),
    (
        "fault",
        "IPv4 version not checked",
        "if (ip->version != 4 || ip->ihl < 5)",
        "if (ip->ihl < 5)",
    ),
    (
        "fault",
        "TCP taken for UDP",
        "\t\tif (ip->protocol != IPPROTO_UDP)\n\t\t\treturn 0;\n",
        "",
    ),
    (
        "fault",
        "IPv6 next header not checked",
        "ip6->nexthdr != IPPROTO_UDP",
        "0",
    ),
    // Counters (§4.3, §4.5).
    (
        "logging",
        "a lost increment",
        "__sync_fetch_and_add(&req_count, 1LL);",
        "",
    ),
    (
        "logging",
        "a doubled increment",
        "__sync_fetch_and_add(&req_count, 1LL);",
        "__sync_fetch_and_add(&req_count, 2LL);",
    ),
    (
        "logging",
        "total_bytes counts the UDP header",
        "*payload_len = length - sizeof(*udp);",
        "*payload_len = length;",
    ),
    (
        "logging",
        "a non-RPC packet updates state",
        "\tif (!sb_rpc_payload(ctx, &payload_len))\n\t\treturn XDP_PASS;",
        "\tif (!sb_rpc_payload(ctx, &payload_len)) {\n\t\t__sync_fetch_and_add(&req_count, 1LL);\n\t\treturn XDP_PASS;\n\t}",
    ),
    (
        "logging",
        "bytes added to the wrong counter",
        "__sync_fetch_and_add(&total_bytes, payload_len);",
        "__sync_fetch_and_add(&req_count, payload_len);",
    ),
    (
        "logging_fault",
        "the drop is not counted",
        "__sync_fetch_and_add(&drop_count, 1LL);",
        "",
    ),
    (
        "logging_fault",
        "every request counted as a drop",
        "__sync_fetch_and_add(&req_count, 1LL);",
        "__sync_fetch_and_add(&req_count, 1LL);\n\t__sync_fetch_and_add(&drop_count, 1LL);",
    ),
    // The optimizable condition.
    (
        "fault_condition",
        "prandom % 10 > 5 for randomf < 0.5",
        "if (r < 2147483648LL) {",
        "if (r % 10 > 5) {",
    ),
    (
        "fault_condition",
        "prob threshold off by one",
        "r < 429496730LL",
        "r < 429496729LL",
    ),
    (
        "fault_condition",
        "size compared with >=",
        "payload_len > 100LL",
        "payload_len >= 100LL",
    ),
    (
        "fault_condition",
        "a second draw instead of reusing r",
        "(r < 429496730LL)",
        "(bpf_get_prandom_u32() < 429496730u)",
    ),
    (
        "fault_condition",
        "a write to a state variable the policy never writes",
        "\tr = (__s64)(bpf_get_prandom_u32());",
        "\tmin_size = 7;\n\tr = (__s64)(bpf_get_prandom_u32());",
    ),
    // The token bucket (§4.4, CHECKER-NOTES.md §2).
    (
        "ratelimit",
        "the refill without its overflow cap",
        "\tif (x >= cap)\n\t\treturn cap;\n",
        "",
    ),
    (
        "ratelimit",
        "fixed point at the wrong scale",
        "__scale_tokens = 1000000;",
        "__scale_tokens = 1000;",
    ),
    (
        "ratelimit",
        "dt capped at one second",
        "sb_add_capped(tokens, (now - last),",
        "sb_add_capped(tokens, ((now - last) > 1000000000ULL ? 1000000000ULL : (now - last)),",
    ),
    ("ratelimit", "last not updated", "\tlast = now;\n", ""),
    (
        "ratelimit",
        "the token not taken",
        "\t\ttokens = (__s64)((__u64)tokens - 1000000ULL);\n",
        "",
    ),
    (
        "ratelimit",
        "tokens > 1 instead of >= 1",
        "tokens >= 1000000LL",
        "tokens > 1000000LL",
    ),
    // Vectors and constant maps.
    (
        "acl",
        "a wrong record",
        "__s64 record = len;",
        "__s64 record = len + 8;",
    ),
    (
        "acl",
        "size(v) not advanced",
        "\t\t__sync_fetch_and_add(&sizes_len, 1);\n",
        "",
    ),
    (
        "acl",
        "a deny-list entry missing",
        "(len == 13LL || len == 0LL)",
        "(len == 0LL)",
    ),
    // A hash map written by every request (tests/policies/seen_sizes.appnet).
    (
        "seen_sizes",
        "a map write of the wrong value",
        "__u8 value = 1;",
        "__u8 value = 0;",
    ),
    (
        "seen_sizes",
        "a map write at the wrong key",
        "__s64 key = payload_len;",
        "__s64 key = payload_len + 1;",
    ),
    (
        "seen_sizes",
        "a wrong value at one key only",
        "__u8 value = 1;",
        "__u8 value = payload_len != 13;",
    ),
    (
        "seen_sizes",
        "size 13 dropped once seen (the program reads a map the policy only writes)",
        "__u8 value = 1;\n",
        "__u8 value = 1;\n\n\t\tif (key == 13 && bpf_map_lookup_elem(&seen, &key))\n\t\t\treturn XDP_DROP;\n",
    ),
    (
        "seen_sizes",
        "the entry deleted instead of written",
        "bpf_map_update_elem(&seen, &key, &value, BPF_ANY);",
        "bpf_map_delete_elem(&seen, &key);",
    ),
    (
        "null",
        "the no-op drops",
        "return XDP_PASS;\t/* forward */",
        "return XDP_DROP;\t/* forward */",
    ),
];

/// Extra declarations a mutation needs (a global the policy's state has but the C folded).
fn declarations(example: &str, description: &str) -> &'static str {
    match (example, description) {
        ("fault_condition", "a write to a state variable the policy never writes") => {
            "__s64 min_size = 100;\n"
        }
        _ => "",
    }
}

#[test]
fn every_mutant_is_refuted_with_a_counterexample_the_kernel_reproduces() {
    assert!(MUTATIONS.len() >= 30);
    let examples = common::examples();
    let dir = tempfile::tempdir().unwrap();
    let mut refuted = 0;
    for (index, (example, description, from, to)) in MUTATIONS.iter().enumerate() {
        let path = examples
            .iter()
            .find(|(name, _)| name == example)
            .map(|(_, path)| path.clone())
            .unwrap_or_else(|| common::root().join(format!("tests/policies/{example}.appnet")));
        let path = &path;
        let c = common::compile(example, path, false).emitted.c_source;
        assert!(
            c.contains(from),
            "{example}: `{from}` is not in the generated C"
        );
        let mut wrong = c.replacen(from, to, 1);
        if *from == "return XDP_PASS;\t/* forward */" {
            wrong = c.replace(from, to);
        }
        let extra = declarations(example, description);
        if !extra.is_empty() {
            wrong = wrong.replacen(
                "/* State (docs/language.md §4.3). */\n",
                &format!("/* State (docs/language.md §4.3). */\n{extra}"),
                1,
            );
        }
        let file = dir.path().join(format!("mutant{index}.c"));
        std::fs::write(&file, wrong).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_simplebpf"))
            .args([
                "check",
                path.to_str().unwrap(),
                file.to_str().unwrap(),
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{example} / {description}: {stdout}{stderr}"
        );
        let verdict: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            verdict["verdict"], "not equivalent",
            "{example} / {description}"
        );
        let cx = &verdict["counterexample"];
        assert_eq!(cx["replayed_in_interpreter"], true);
        if description.contains("once seen") {
            // Only a map entry present before the request shows this one: the replay must
            // have written the pre-state into the kernel's map.
            assert!(
                cx["pre_state"]["seen"]
                    .as_array()
                    .is_some_and(|entries| !entries.is_empty()),
                "{example} / {description}: {cx}"
            );
        }
        match &cx["reproduced_in_kernel"] {
            serde_json::Value::Bool(true) => {}
            other => {
                let reason = other.as_str().unwrap_or_default();
                assert!(
                    reason.contains("not allowed")
                        && !simplebpf_compiler::kernel::kernel_required(),
                    "{example} / {description}: the kernel replay did not run: {other}"
                );
            }
        }
        eprintln!(
            "refuted in {} ms by {}: {example} / {description}",
            verdict["ms"], cx["found_by"]
        );
        refuted += 1;
    }
    eprintln!(
        "{refuted} of {} mutants refuted and reproduced",
        MUTATIONS.len()
    );
}
