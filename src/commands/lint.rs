//! `simplebpf lint`: parse and check policies.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use simplebpf_dsl::Severity;

use super::Outcome;
use crate::output::{self, Format};
use crate::source::SourceFile;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Policy files (`.appnet`).
    #[arg(required = true, value_name = "POLICY")]
    pub policies: Vec<PathBuf>,
    /// `text` for people (diagnostics and the summary on stderr), `json` for tools (one
    /// object per diagnostic, then a summary object, on stdout).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn lint(args: &LintArgs) -> anyhow::Result<Outcome> {
    let (mut errors, mut warnings) = (0usize, 0usize);
    for path in &args.policies {
        let file = SourceFile::read(path)?;
        let analysis = simplebpf_dsl::analyze_bytes(&file.bytes);
        output::diagnostics(&file, &analysis.diagnostics, args.format);
        for diagnostic in &analysis.diagnostics {
            match diagnostic.severity() {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
    }
    let policies = args.policies.len();
    match args.format {
        Format::Text => eprintln!(
            "lint: {policies} {}, {errors} {}, {warnings} {}",
            plural(policies, "policy", "policies"),
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings"),
        ),
        Format::Json => writeln!(
            std::io::stdout(),
            "{}",
            serde_json::json!({ "summary": { "policies": policies, "errors": errors, "warnings": warnings } })
        )?,
    }
    Ok(if errors > 0 {
        Outcome::InputErrors
    } else {
        Outcome::Success
    })
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}
