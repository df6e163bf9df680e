//! `simplebpf lint`: parse and check policies.

use std::path::PathBuf;

use clap::Args;

use super::Outcome;
use crate::output::{self, Format};
use crate::source::SourceFile;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Policy files (`.appnet`).
    #[arg(required = true, value_name = "POLICY")]
    pub policies: Vec<PathBuf>,
    /// `text` for people (on stderr), `json` for tools (on stdout).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn lint(args: &LintArgs) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::Success;
    for path in &args.policies {
        let file = SourceFile::read(path)?;
        let analysis = simplebpf_dsl::analyze_bytes(&file.bytes);
        output::diagnostics(&file, &analysis.diagnostics, args.format);
        if analysis.has_errors() {
            outcome = Outcome::InputErrors;
        }
    }
    Ok(outcome)
}
