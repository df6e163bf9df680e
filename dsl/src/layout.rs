//! The layout pass: AppNet's indenter (LANGUAGE.md §1.1) between the lexer and the parser.
//!
//! It merges each run of line breaks into one `Newline`, turns changes of indentation into
//! `Indent`/`Dedent`, and refuses nesting deep enough to threaten the recursion of the later
//! passes. Parentheses do not suspend layout: a call cannot span lines.

use logos::Logos;

use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;
use crate::token::Token;

/// Deepest block nesting accepted. Real elements nest fewer than ten levels; the limit keeps
/// every recursive pass (checker, lowering, interpreter) far from the end of the stack.
pub const MAX_BLOCK_DEPTH: usize = 64;
/// Deepest parenthesis nesting accepted, for the same reason.
pub const MAX_PAREN_DEPTH: usize = 64;

pub type Spanned<'s> = (usize, Token<'s>, usize);

/// Lexes `src` and applies the layout rules. Stops at the first error: after a bad token or a
/// bad indentation, the rest of the stream means nothing.
/// The error is boxed: it is rare, and a `Diagnostic` is large next to the token vector.
pub fn tokenize(src: &str) -> Result<Vec<Spanned<'_>>, Box<Diagnostic>> {
    let mut out: Vec<Spanned<'_>> = Vec::new();
    let mut indents: Vec<usize> = vec![0];
    let mut paren_depth = 0usize;
    let mut lexer = Token::lexer(src).spanned().peekable();

    while let Some((result, range)) = lexer.next() {
        let span = Span::from(range.clone());
        let token = result.map_err(|()| Box::new(invalid_character(src, span)))?;
        match token {
            Token::Newline(mut width) => {
                let mut end = span.end;
                // A run of blank and comment lines is one line break; the width is measured
                // after the last newline of the run.
                while let Some((Ok(Token::Newline(next_width)), next)) = lexer.peek() {
                    width = *next_width;
                    end = next.end;
                    lexer.next();
                }
                out.push((span.start, Token::Newline(width), end));
                let indentation = Span::new(src[..end].rfind('\n').map_or(0, |i| i + 1), end);
                apply_indent(&mut out, &mut indents, width, indentation)?;
            }
            Token::LParen => {
                paren_depth += 1;
                if paren_depth > MAX_PAREN_DEPTH {
                    return Err(Diagnostic::new(
                        Code::ParensTooDeep,
                        span,
                        format!("parentheses nested more than {MAX_PAREN_DEPTH} deep"),
                    )
                    .with_label("this one is too deep")
                    .with_help("split the expression into several assignments")
                    .into());
                }
                out.push((span.start, token, span.end));
            }
            Token::RParen => {
                paren_depth = paren_depth.saturating_sub(1);
                out.push((span.start, token, span.end));
            }
            Token::UnterminatedStr => {
                return Err(
                    Diagnostic::new(Code::UnterminatedString, span, "unterminated string")
                        .with_label("this string has no closing quote on its line")
                        .with_help("close it with `'`; strings cannot span lines")
                        .into(),
                );
            }
            Token::DoubleQuotedStr => {
                return Err(Diagnostic::new(
                    Code::DoubleQuotedString,
                    span,
                    "strings are written with single quotes",
                )
                .with_label("double quotes are not part of the language")
                .with_help(format!("write '{}'", src[span.range()].trim_matches('"')))
                .into());
            }
            Token::LeadingZeroInt => {
                return Err(Diagnostic::new(
                    Code::LeadingZero,
                    span,
                    "integers cannot start with a zero",
                )
                .with_label("leading zero")
                .with_help(format!("write {}", trim_leading_zeros(&src[span.range()])))
                .into());
            }
            Token::BadOperator(op) => {
                return Err(Box::new(bad_operator(op, span)));
            }
            _ => out.push((span.start, token, span.end)),
        }
    }

    // Close the last line and every open block, so that a file without a final newline
    // parses like one with it.
    let last_line_closed = matches!(
        out.iter()
            .rev()
            .find(|(_, token, _)| *token != Token::Dedent),
        Some((_, Token::Newline(_), _))
    );
    if !last_line_closed {
        out.push((src.len(), Token::Newline(0), src.len()));
    }
    for _ in 1..indents.len() {
        out.push((src.len(), Token::Dedent, src.len()));
    }
    Ok(out)
}

fn apply_indent(
    out: &mut Vec<Spanned<'_>>,
    indents: &mut Vec<usize>,
    width: usize,
    indentation: Span,
) -> Result<(), Box<Diagnostic>> {
    let top = *indents.last().unwrap_or(&0);
    if width > top {
        if indents.len() > MAX_BLOCK_DEPTH {
            return Err(Diagnostic::new(
                Code::BlocksTooDeep,
                Span::new(indentation.end, indentation.end),
                format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"),
            )
            .with_label("this line opens one block too many")
            .into());
        }
        indents.push(width);
        out.push((indentation.end, Token::Indent, indentation.end));
        return Ok(());
    }
    let levels: Vec<String> = indents.iter().map(usize::to_string).collect();
    while width < *indents.last().unwrap_or(&0) {
        indents.pop();
        out.push((indentation.end, Token::Dedent, indentation.end));
    }
    if width != *indents.last().unwrap_or(&0) {
        return Err(Diagnostic::new(
            Code::UnalignedDedent,
            indentation,
            "unindent does not match any outer indentation level",
        )
        .with_label(format!("this line is indented {width} columns"))
        .with_help(format!(
            "indent it to one of the enclosing levels ({} columns); a tab counts as 4 columns",
            levels.join(", ")
        ))
        .into());
    }
    Ok(())
}

fn invalid_character(src: &str, span: Span) -> Diagnostic {
    let ch = src[span.start..].chars().next().unwrap_or('\u{fffd}');
    let span = Span::new(span.start, span.start + ch.len_utf8());
    let shown = if is_invisible(ch) {
        format!("U+{:04X}", ch as u32)
    } else {
        format!("`{ch}`")
    };
    let diagnostic = Diagnostic::new(
        Code::InvalidCharacter,
        span,
        format!("unexpected character {shown}"),
    )
    .with_label("not part of any token");
    match ch {
        '{' | '}' | ';' => diagnostic.with_help(
            "braces and semicolons are AppNet's 2024 syntax; write blocks by indentation (docs/language.md §1)",
        ),
        '[' | ']' => diagnostic.with_help("there are no list literals; vectors are declared under `state:`"),
        _ => diagnostic,
    }
}

/// Characters a terminal shows as nothing or as blank: named by code point in messages.
fn is_invisible(ch: char) -> bool {
    ch.is_control()
        || ch.is_whitespace()
        || matches!(
            ch,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
        )
}

fn bad_operator(op: &str, span: Span) -> Diagnostic {
    let help = match op {
        "%" => "there is no modulo operator; compute `a - (a / b) * b`",
        "!" => "there is no `not`; compare with `== false`",
        _ => "the language has no bitwise operators",
    };
    Diagnostic::new(
        Code::UnsupportedOperator,
        span,
        format!("the operator `{op}` is not part of the language"),
    )
    .with_label("unsupported operator")
    .with_help(help)
}

fn trim_leading_zeros(text: &str) -> &str {
    let trimmed = text.trim_start_matches(['0', '_']);
    if trimmed.is_empty() { "0" } else { trimmed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> String {
        let tokens = tokenize(src).unwrap();
        tokens
            .iter()
            .map(|(_, token, _)| match token {
                Token::Newline(_) => "NL".to_string(),
                Token::Indent => "INDENT".to_string(),
                Token::Dedent => "DEDENT".to_string(),
                Token::Name(name) => (*name).to_string(),
                other => other.keyword_text().unwrap_or("?").to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn tab_counts_four_columns_and_mixes_with_spaces() {
        assert_eq!(
            kinds("a\n\tb\n    c\n\t  d\n      e\n"),
            "a NL INDENT b NL c NL INDENT d NL e NL DEDENT DEDENT"
        );
    }

    #[test]
    fn width_is_taken_after_the_last_newline_of_a_run() {
        assert_eq!(
            kinds("a\n\t\t# comment\n\n        \n\tb\n"),
            "a NL INDENT b NL DEDENT"
        );
    }

    #[test]
    fn backslash_joins_lines_and_eof_closes_blocks() {
        assert_eq!(kinds("a \\\n   b\n\tc"), "a b NL INDENT c NL DEDENT");
    }

    #[test]
    fn parentheses_do_not_suspend_layout() {
        assert_eq!(kinds("(a\n)"), "? a NL ? NL");
    }

    #[test]
    fn unaligned_dedent_is_an_error() {
        let error = tokenize("a\n\tb\n  c\n").unwrap_err();
        assert_eq!(error.code, Code::UnalignedDedent);
        assert_eq!(error.span, Span::new(5, 7));
    }
}
