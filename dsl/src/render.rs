//! Renders diagnostics as text with ariadne.

use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};

use crate::diagnostic::{Diagnostic, Severity};

/// Options for `render`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// ANSI colours; only for a terminal.
    pub color: bool,
}

/// Renders one diagnostic against its source text. `file` is the name shown in the report.
pub fn render(diagnostic: &Diagnostic, file: &str, src: &str, options: RenderOptions) -> String {
    let kind = match diagnostic.severity() {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let clamp = |span: crate::span::Span| {
        let start = floor_char_boundary(src, span.start.min(src.len()));
        let end = floor_char_boundary(src, span.end.min(src.len())).max(start);
        start..end
    };
    let primary = clamp(diagnostic.span);
    let mut report = Report::build(kind, (file, primary.clone()))
        .with_config(
            Config::default()
                .with_color(options.color)
                .with_index_type(IndexType::Byte),
        )
        .with_message(format!(
            "[{}] {}",
            diagnostic.code.as_str(),
            diagnostic.message
        ))
        .with_label(Label::new((file, primary)).with_message(&diagnostic.label));
    for label in &diagnostic.secondary {
        report =
            report.with_label(Label::new((file, clamp(label.span))).with_message(&label.message));
    }
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help);
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = report.finish().write((file, Source::from(src)), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn floor_char_boundary(src: &str, mut index: usize) -> usize {
    while index > 0 && !src.is_char_boundary(index) {
        index -= 1;
    }
    index
}
