//! The prompts a model is sent, as snapshots: a change to a template, to the facts or to the
//! retrieval shows up here (and changes `templates_sha256`, which stales every lockfile).

use simplebpf_compiler::llm::{Message, Role, prompt};

fn render(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            format!("=== {role} ===\n{}", m.content)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn initial(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = std::fs::read_to_string(root.join(path)).unwrap();
    let program = simplebpf_dsl::analyze(&source)
        .ir
        .expect("the example analyses");
    render(&prompt::initial(&source, &program, 9000))
}

#[test]
fn the_first_prompt_for_fault() {
    insta::assert_snapshot!(initial("examples/fault.appnet"));
}

#[test]
fn the_first_prompt_for_ratelimit() {
    // Only the user message: the system message is the fault snapshot's.
    let text = initial("examples/ratelimit.appnet");
    let user = text.split("=== user ===\n").nth(1).unwrap();
    insta::assert_snapshot!(user);
}

#[test]
fn a_feedback_message() {
    let message = prompt::feedback(
        "clang could not compile it",
        "fault.c:3:1: error: unknown type name 'u32'",
    );
    insta::assert_snapshot!(render(&[message]));
}

/// The optimizer's user message for fault with a made-up best program; `x86` as the kernel
/// measured it, or not.
fn optimizer_prompt(cost: &str, x86: Option<&str>) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = std::fs::read_to_string(root.join("examples/fault.appnet")).unwrap();
    let program = simplebpf_dsl::analyze(&source).ir.unwrap();
    let best = prompt::Best {
        c: "int fault_req(struct xdp_md *ctx) { return XDP_PASS; }",
        cost,
        listing: "   0: w0 = 2\n   1: exit\n",
        x86,
    };
    let text = render(&prompt::optimize(&source, &program, 9000, best));
    // Only the user message: the system message is the fault snapshot's.
    text.split("=== user ===\n").nth(1).unwrap().to_string()
}

#[test]
fn the_optimizer_prompt() {
    let user = optimizer_prompt(
        "49 x86 instructions after the JIT, 35 BPF instructions after the verifier, 35 in the object",
        Some("   0: endbr64\n   4: nop dword ptr [rax+rax]\n   9: xchg ax,ax\n   b: push rbp\n"),
    );
    insta::assert_snapshot!(user);
}

#[test]
fn the_optimizer_prompt_without_a_kernel_says_so() {
    let user = optimizer_prompt("35 BPF instructions in the object", None);
    assert!(
        user.contains("(not measured: no kernel to load it into)"),
        "{user}"
    );
}
