//! AppNet's own element files: what its grammar accepts, we accept; what it rejects, we reject
//! with a diagnostic; and printing a parsed file gives a file that parses to the same tree.

mod common;

use simplebpf_dsl::print::print_program;

#[test]
fn accepted_files_lint_clean_and_rejected_files_get_a_diagnostic() {
    let Some(entries) = common::manifest() else {
        return;
    };
    assert!(
        entries.len() > 400,
        "the manifest lists {} files",
        entries.len()
    );
    let mut failures = Vec::new();
    for entry in &entries {
        let bytes = std::fs::read(&entry.path).unwrap();
        let analysis = simplebpf_dsl::analyze_bytes(&bytes);
        let ok = if entry.accepted {
            !analysis.has_errors()
        } else {
            analysis.has_errors()
        };
        if !ok {
            failures.push(format!(
                "{} (AppNet accepts: {}): {:?}",
                entry.path.display(),
                entry.accepted,
                analysis
                    .diagnostics
                    .iter()
                    .map(|d| &d.message)
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn print_then_parse_gives_the_same_tree() {
    let Some(entries) = common::manifest() else {
        return;
    };
    let mut checked = 0;
    for entry in entries.iter().filter(|e| e.accepted) {
        let src = std::fs::read_to_string(&entry.path).unwrap();
        let ast = simplebpf_dsl::parser::parse(&src).unwrap();
        let printed = print_program(&ast);
        let reparsed = simplebpf_dsl::parser::parse(&printed).unwrap_or_else(|errors| {
            panic!(
                "{}: the printed form does not parse: {errors:?}\n{printed}",
                entry.path.display()
            )
        });
        assert_eq!(
            common::without_spans(&format!("{ast:?}")),
            common::without_spans(&format!("{reparsed:?}")),
            "{}",
            entry.path.display()
        );
        // Printing is a fixed point after one round.
        assert_eq!(print_program(&reparsed), printed);
        checked += 1;
    }
    assert_eq!(checked, 210);
}
