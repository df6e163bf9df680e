//! A build script that never asks for an LLM compiles no HTTP stack: without the default
//! feature `llm`, the root crate's dependency tree has no reqwest, hyper or rustls.

use std::process::Command;

const HTTP: &[&str] = &["reqwest", "hyper", "rustls"];

fn tree(default_features: bool) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args([
            "tree",
            "-p",
            "simplebpf",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !default_features {
        command.arg("--no-default-features");
    }
    let output = command.output().expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn http_crates(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or_default();
            HTTP.contains(&name)
        })
        .collect()
}

#[test]
fn without_the_llm_feature_there_is_no_http_stack() {
    let without = tree(false);
    assert!(without.contains("simplebpf-compiler"), "{without}");
    assert_eq!(http_crates(&without), Vec::<&str>::new());
    // The same look finds them when the feature is on.
    let with = tree(true);
    assert!(!http_crates(&with).is_empty(), "{with}");
}
