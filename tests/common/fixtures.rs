//! Inputs the tests and the benchmarks both make. Self-contained: `benches/checker.rs`
//! includes this file by path.

use std::process::Command;

/// A policy that adds the payload size to `n` counters.
pub fn counters_policy(n: usize) -> String {
    let mut text = String::from("state:\n");
    for i in 0..n {
        text.push_str(&format!("\tc{i}: int\n"));
    }
    text.push_str("\ninit():\n\tpass\n\nreq(rpc):\n");
    for i in 0..n {
        text.push_str(&format!("\tc{i} = c{i} + byte_size(rpc, 'body')\n"));
    }
    text.push_str("\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n");
    text
}

/// The kernel's types as C (`vmlinux.h`), for programs written over them; never committed.
pub fn vmlinux_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            "c",
        ])
        .output()
        .expect("bpftool runs (scripts/setup installs it)");
    assert!(
        output.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(dir.path().join("vmlinux.h"), output.stdout).unwrap();
    dir
}
