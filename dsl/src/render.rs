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
    let view = View::around(src, diagnostic.span.start);
    let kind = match diagnostic.severity() {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let primary = view.map(diagnostic.span);
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
        report = report
            .with_label(Label::new((file, view.map(label.span))).with_message(&label.message));
    }
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help);
    }
    if !view.cut.is_empty() {
        report = report.with_note(format!(
            "the line is {} bytes long; shown from byte {} of it",
            view.cut.len(),
            view.kept.start - view.cut.start
        ));
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = report
        .finish()
        .write((file, Source::from(view.text.as_str())), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Longest line shown whole; a longer one is cut to a window around the diagnostic, so that a
/// 1 MB line gives a readable report instead of a megabyte of output.
const MAX_SHOWN_LINE: usize = 240;

/// The source as shown: the text with the diagnostic's line cut to a window when it is long,
/// and the arithmetic to move spans into it.
struct View {
    text: String,
    /// Byte range of the original text that was replaced by the window.
    cut: std::ops::Range<usize>,
    /// The kept part of the cut range, and where it starts in `text`.
    kept: std::ops::Range<usize>,
    kept_at: usize,
}

impl View {
    fn around(src: &str, at: usize) -> View {
        let at = floor_char_boundary(src, at.min(src.len()));
        let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[at..].find('\n').map_or(src.len(), |i| at + i);
        if line_end - line_start <= MAX_SHOWN_LINE {
            return View {
                text: printable(src),
                cut: 0..0,
                kept: 0..0,
                kept_at: 0,
            };
        }
        let start = floor_char_boundary(src, at.saturating_sub(MAX_SHOWN_LINE / 3).max(line_start));
        let end = floor_char_boundary(src, (start + MAX_SHOWN_LINE).min(line_end));
        let prefix = if start > line_start { "…" } else { "" };
        let suffix = if end < line_end { "…" } else { "" };
        let mut text =
            String::with_capacity(src.len() - (line_end - line_start) + MAX_SHOWN_LINE + 8);
        text.push_str(&src[..line_start]);
        text.push_str(prefix);
        let kept_at = text.len();
        text.push_str(&src[start..end]);
        text.push_str(suffix);
        text.push_str(&src[line_end..]);
        View {
            text: printable(&text),
            cut: line_start..line_end,
            kept: start..end,
            kept_at,
        }
    }

    fn map_offset(&self, offset: usize) -> usize {
        if self.cut.is_empty() || offset < self.cut.start {
            return offset;
        }
        if offset >= self.cut.end {
            let removed = self.cut.len() as isize;
            let added = (self.kept_at - self.cut.start + self.kept.len()) as isize
                + if self.kept.end < self.cut.end {
                    "…".len() as isize
                } else {
                    0
                };
            return (offset as isize - removed + added) as usize;
        }
        let clamped = offset.clamp(self.kept.start, self.kept.end);
        self.kept_at + (clamped - self.kept.start)
    }

    fn map(&self, span: crate::span::Span) -> std::ops::Range<usize> {
        let text = self.text.as_str();
        let start = floor_char_boundary(text, self.map_offset(span.start).min(text.len()));
        let end = floor_char_boundary(text, self.map_offset(span.end).min(text.len())).max(start);
        start..end
    }
}

/// Control characters would garble a terminal; `?` keeps every byte offset where it was.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_control() && !matches!(c, '\n' | '\t' | '\r') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

fn floor_char_boundary(src: &str, mut index: usize) -> usize {
    index = index.min(src.len());
    while index > 0 && !src.is_char_boundary(index) {
        index -= 1;
    }
    index
}
