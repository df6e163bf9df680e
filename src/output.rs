//! Where and how results are printed: human text on stderr, JSON on stdout.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use simplebpf_dsl::Diagnostic;
use simplebpf_dsl::render::{RenderOptions, render};

use crate::json;
use crate::source::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Diagnostics rendered for people, on stderr.
    #[default]
    Text,
    /// One JSON object per line on stdout.
    Json,
}

/// Prints the diagnostics of one file in the chosen format.
pub fn diagnostics(file: &SourceFile, diagnostics: &[Diagnostic], format: Format) {
    let text = file.text();
    match format {
        Format::Text => {
            let options = RenderOptions {
                color: std::io::stderr().is_terminal(),
            };
            let mut stderr = std::io::stderr().lock();
            for diagnostic in diagnostics {
                let _ =
                    stderr.write_all(render(diagnostic, &file.name(), &text, options).as_bytes());
            }
        }
        Format::Json => {
            let mut stdout = std::io::stdout().lock();
            for diagnostic in diagnostics {
                let object = json::diagnostic(&file.name(), &text, diagnostic);
                let _ = writeln!(stdout, "{object}");
            }
        }
    }
}
