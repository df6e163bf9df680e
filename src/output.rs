//! Where and how results are printed: results (tables, reports, verdicts) on stdout,
//! diagnostics, notes and progress on stderr; JSON on stdout; colour only where asked for.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use clap::ValueEnum;
use simplebpf_dsl::Diagnostic;
use simplebpf_dsl::render::{RenderOptions, render};

use crate::json;
use crate::source::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Tables and diagnostics rendered for people.
    #[default]
    Text,
    /// One JSON object per line on stdout.
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

static COLOR: OnceLock<bool> = OnceLock::new();

/// Decides once, for the whole run, whether diagnostics are coloured. `no_color` is the
/// `NO_COLOR` variable (no-color.org: set and not empty means no colour); an explicit
/// `--color always` or `never` wins over it.
pub fn set_color(choice: ColorChoice, no_color: Option<&str>) {
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => no_color.is_none_or(str::is_empty) && std::io::stderr().is_terminal(),
    };
    let _ = COLOR.set(color);
}

fn color() -> bool {
    *COLOR.get().unwrap_or(&false)
}

/// Prints the diagnostics of one file in the chosen format.
pub fn diagnostics(file: &SourceFile, diagnostics: &[Diagnostic], format: Format) {
    let text = file.text();
    match format {
        Format::Text => {
            let options = RenderOptions { color: color() };
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
