//! Every malformed input gets a diagnostic that points at its cause: rendered snapshots.

use simplebpf_dsl::render::{RenderOptions, render};

fn rendered(name: &str, bytes: &[u8]) -> String {
    let analysis = simplebpf_dsl::analyze_bytes(bytes);
    assert!(
        !analysis.diagnostics.is_empty(),
        "{name}: expected at least one diagnostic"
    );
    let src = String::from_utf8_lossy(bytes);
    analysis
        .diagnostics
        .iter()
        .map(|d| render(d, name, &src, RenderOptions::default()))
        .collect()
}

#[test]
fn malformed_inputs() {
    insta::glob!("malformed/*.appnet", |path| {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = String::from_utf8_lossy(&bytes);
        insta::assert_snapshot!(format!(
            "----- SOURCE\n{source}\n----- DIAGNOSTICS\n{}",
            rendered(&name, &bytes)
        ));
    });
}

/// Inputs too large or too binary to keep as files: built here, snapshot without the source.
#[test]
fn generated_inputs() {
    let prefix = "state:\n\tn: int\n\ninit():\n\tn = ";
    let suffix = "\n\nreq(rpc):\n\tsend(rpc, Down)\n\nresp(rpc):\n\tsend(rpc, Up)\n";

    let mut long_line = String::from(prefix);
    while long_line.len() < 1 << 20 {
        long_line.push_str("1 + ");
    }
    long_line.push('1');
    long_line.push_str(suffix);
    insta::assert_snapshot!(
        "one_megabyte_line",
        rendered("long.appnet", long_line.as_bytes())
    );

    let nested = format!(
        "{prefix}{}1{}{suffix}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    insta::assert_snapshot!(
        "ten_thousand_parentheses",
        rendered("nested.appnet", nested.as_bytes())
    );

    let mut deep_blocks = String::from("state:\n\tpass\n\ninit():\n\tpass\n\nreq(rpc):\n");
    for depth in 1..=100 {
        deep_blocks.push_str(&"\t".repeat(depth));
        deep_blocks.push_str("match true:\n");
        deep_blocks.push_str(&"\t".repeat(depth + 1));
        deep_blocks.push_str("true =>\n");
    }
    insta::assert_snapshot!(
        "hundred_nested_blocks",
        rendered("deep.appnet", deep_blocks.as_bytes())
    );

    // A fixed pseudo-random byte string, not UTF-8.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    insta::assert_snapshot!("binary_garbage", rendered("garbage.bin", &garbage));

    let control = b"state:\n\tn: int\x00\x01\n";
    insta::assert_snapshot!("control_characters", rendered("control.appnet", control));
}
