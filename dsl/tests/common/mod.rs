//! Helpers shared by the front end's integration tests.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

/// The variable that points the corpus tests at a copy of AppNet's element files.
pub const CORPUS_ENV: &str = "SIMPLEBPF_APPNET_CORPUS";

/// AppNet's element files, used in place (never copied into this repository): from
/// `SIMPLEBPF_APPNET_CORPUS`, or `../shared/appnet-corpus` beside the checkout. A clone
/// without them runs the rest of the suite and says, in one line on the terminal, that the
/// corpus tests did not run; under `CI=true` (CI always has the corpus) that is a failure.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(CORPUS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/appnet-corpus")
        });
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    let message = format!(
        "the AppNet corpus is not at {} (set {CORPUS_ENV} to a copy)",
        dir.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message}; CI=true requires it"
    );
    // Once, and past the test harness's capture, so that a passing run still says what it
    // skipped.
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "note: AppNet corpus tests not run: {message}"
        );
    });
    None
}

/// One row of `MANIFEST.tsv`: a path and whether either AppNet grammar accepts it.
pub struct Entry {
    pub path: PathBuf,
    pub accepted: bool,
}

/// The corpus' files, or `None` when it is absent (see `corpus_dir`).
pub fn manifest() -> Option<Vec<Entry>> {
    let dir = corpus_dir()?;
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (path, head, pin) = (
        column("path"),
        column("parses_HEAD_grammar"),
        column("parses_2025-06_grammar"),
    );
    Some(
        lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                Entry {
                    path: dir.join(fields[path]),
                    accepted: fields[head] == "Y" || fields[pin] == "Y",
                }
            })
            .collect(),
    )
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
