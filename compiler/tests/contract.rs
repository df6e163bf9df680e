//! The state contract read back from objects written in different styles: the rules
//! backend's, libbpf's custom sections with the lock in global data, and objects that break
//! the contract (each with the reason).

use simplebpf_compiler::clang::{self, ClangOptions};
use simplebpf_compiler::contract::{self, ContractError, LockPlace, Place};
use simplebpf_compiler::object_model::BpfObject;
use simplebpf_dsl::interp::Value;

const RATELIMIT: &str = "state:\n\ttokens: float\n\tlimit: float\n\trate: float\n\tlast: Instant\n\ninit():\n\tlimit = 100.0\n\trate = 1000.0\n\ttokens = 100.0\n\tlast = current_time()\n\nreq(rpc):\n\ttokens = min(limit, tokens + (rate * time_diff(current_time(), last)))\n\tlast = current_time()\n\tmatch tokens >= 1.0:\n\t\ttrue =>\n\t\t\ttokens = tokens - 1.0\n\t\t\tsend(rpc, Down)\n\t\tfalse =>\n\t\t\tsend(err('rate_limited'), Up)\n\nresp(rpc):\n\tsend(rpc, Up)\n";

const HEADER: &str = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n";

fn object(c: &str) -> BpfObject {
    let dir = tempfile::tempdir().unwrap();
    let elf = clang::compile(
        &format!("{HEADER}{c}"),
        dir.path(),
        &ClangOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    BpfObject::parse(&elf).unwrap()
}

fn program() -> simplebpf_dsl::ir::Program {
    simplebpf_dsl::analyze(RATELIMIT).ir.unwrap()
}

const PASS: &str = "SEC(\"xdp\") int p(struct xdp_md *ctx) { return XDP_PASS; }\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n";

#[test]
fn libbpf_private_sections_and_a_lock_in_global_data() {
    let c = format!(
        "#define private(name) SEC(\".data.\" #name) __attribute__((aligned(8)))\n\
         private(rl) struct bpf_spin_lock rl_lock;\n\
         private(rl) __s64 tokens = 100000000;\n\
         private(rl) __u64 last;\n\
         const volatile __s64 __scale_tokens = 1000000;\n{PASS}"
    );
    let contract = contract::read(&program(), &object(&c)).unwrap();
    let tokens = contract.var("tokens").unwrap();
    let Place::Global(global) = &tokens.place else {
        panic!("{tokens:?}");
    };
    assert_eq!(global.section, ".data.rl");
    assert_eq!(global.size, 8);
    assert_eq!(global.signed, Some(true));
    assert_eq!(tokens.scale, Some(1_000_000.into()));
    let Place::Global(last) = &contract.var("last").unwrap().place else {
        panic!("last is not a global");
    };
    assert_eq!(last.signed, Some(false));
    assert!(matches!(
        contract.var("limit").unwrap().place,
        Place::Constant(Value::Float(_))
    ));
    assert_eq!(
        contract.lock,
        Some(LockPlace::Global {
            section: ".data.rl".to_string(),
            name: "rl_lock".to_string()
        })
    );
    assert_eq!(
        contract.float_scales(),
        vec![("tokens".to_string(), 1_000_000.into())]
    );
}

#[test]
fn a_lock_in_an_array_map() {
    let c = format!(
        "struct cell {{ struct bpf_spin_lock lock; }};\n\
         struct {{ __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct cell); }} locks SEC(\".maps\");\n\
         __s64 tokens; __u64 last;\n\
         const volatile __s64 __scale_tokens = 1000;\n{PASS}"
    );
    let contract = contract::read(&program(), &object(&c)).unwrap();
    assert_eq!(
        contract.lock,
        Some(LockPlace::Map {
            map: "locks".to_string()
        })
    );
}

#[test]
fn objects_that_break_the_contract_say_why() {
    let cases = [
        (
            format!("__u64 last;\nconst volatile __s64 __scale_tokens = 1;\n{PASS}"),
            ContractError::Missing {
                name: "tokens".to_string(),
            },
        ),
        (
            format!("__s32 tokens; __u64 last;\nconst volatile __s64 __scale_tokens = 1;\n{PASS}"),
            ContractError::WrongSize {
                name: "tokens".to_string(),
                size: 4,
                ty: "float".to_string(),
                expected: 8,
            },
        ),
        (
            format!("__s64 tokens; __u64 last;\n{PASS}"),
            ContractError::NoScale {
                name: "tokens".to_string(),
                symbol: "__scale_tokens".to_string(),
            },
        ),
        (
            format!("__s64 tokens; __u64 last;\nconst volatile __s64 __scale_tokens = -3;\n{PASS}"),
            ContractError::BadScale {
                symbol: "__scale_tokens".to_string(),
                detail: "-3".to_string(),
            },
        ),
    ];
    for (c, expected) in cases {
        assert_eq!(contract::read(&program(), &object(&c)), Err(expected));
    }
}
