//! Helpers shared by the front end's integration tests.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

/// AppNet's element files, used in place (never copied into this repository). Missing files
/// fail the test: CI always has `../shared`; set `SIMPLEBPF_APPNET_CORPUS` to use another copy.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("SIMPLEBPF_APPNET_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/appnet-corpus")
        });
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the AppNet corpus is not at {} (set SIMPLEBPF_APPNET_CORPUS)",
        dir.display()
    );
    dir
}

/// One row of `MANIFEST.tsv`: a path and whether either AppNet grammar accepts it.
pub struct Entry {
    pub path: PathBuf,
    pub accepted: bool,
}

pub fn manifest() -> Vec<Entry> {
    let dir = corpus_dir();
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (path, head, pin) = (
        column("path"),
        column("parses_HEAD_grammar"),
        column("parses_2025-06_grammar"),
    );
    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            Entry {
                path: dir.join(fields[path]),
                accepted: fields[head] == "Y" || fields[pin] == "Y",
            }
        })
        .collect()
}

/// The `Debug` form of a syntax tree with every span (`12..15`) erased, so that trees parsed
/// from different texts compare by structure.
pub fn without_spans(debug: &str) -> String {
    let bytes = debug.as_bytes();
    let mut out = String::with_capacity(debug.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let first = digits(i);
        if first > 0 && bytes[i + first..].starts_with(b"..") {
            let second = digits(i + first + 2);
            if second > 0 {
                out.push('_');
                i += first + 2 + second;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}
