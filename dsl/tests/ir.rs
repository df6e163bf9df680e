//! The IR text of every example policy, snapshot-tested.

#[test]
fn examples_lower_to_the_expected_ir() {
    insta::glob!("../../examples", "**/*.appnet", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let analysis = simplebpf_dsl::analyze(&src);
        assert!(
            !analysis.has_errors(),
            "{}: {:#?}",
            path.display(),
            analysis.diagnostics
        );
        let program = analysis.ir.expect("no errors, so an IR");
        assert!(
            simplebpf_dsl::refusals(&program).is_empty(),
            "{}: examples must be runnable",
            path.display()
        );
        insta::assert_snapshot!(program.to_string());
    });
}
