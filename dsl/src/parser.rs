//! Parsing: tokens → sections → a `Program`, with every lalrpop error put into the user's words.

use lalrpop_util::{ParseError, lalrpop_mod};

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::layout;
use crate::span::Span;
use crate::token::Token;

lalrpop_mod!(
    #[allow(
        clippy::all,
        clippy::pedantic,
        unused_qualifications,
        missing_debug_implementations
    )]
    grammar
);

/// The tallest expression tree accepted. Recursive passes walk expressions, so a 1 MB line of
/// `1 + 1 + ...` must be refused here rather than overflow a stack later.
pub const MAX_EXPR_DEPTH: u32 = 200;

/// One top-level section as written; `assemble` checks their number and order.
#[derive(Debug)]
pub enum Section {
    State(StateSection),
    Handler(Handler),
}

/// Errors raised from the grammar's own actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFail {
    TooDeep(Span),
    InvalidTarget(Span),
}

type GrammarError<'s> = ParseError<usize, Token<'s>, ParseFail>;

/// Constructors used by the grammar's actions; each refuses a tree that is too deep.
pub(crate) mod expr {
    use super::*;

    pub fn make<'s>(kind: ExprKind, l: usize, r: usize) -> Result<Expr, GrammarError<'s>> {
        let expr = Expr::new(kind, Span::new(l, r));
        if expr.depth > MAX_EXPR_DEPTH {
            return Err(ParseError::User {
                error: ParseFail::TooDeep(expr.span),
            });
        }
        Ok(expr)
    }

    pub fn binary<'s>(
        (op, op_span): (BinOp, Span),
        lhs: Expr,
        rhs: Expr,
    ) -> Result<Expr, GrammarError<'s>> {
        let (l, r) = (lhs.span.start, rhs.span.end);
        // Point at the operator that went one level too deep, not at the whole chain.
        if lhs.depth.max(rhs.depth) >= MAX_EXPR_DEPTH {
            return Err(ParseError::User {
                error: ParseFail::TooDeep(op_span),
            });
        }
        make(
            ExprKind::Binary {
                op,
                op_span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            l,
            r,
        )
    }

    pub fn builtin<'s>(
        op: BuiltinOp,
        target: Ident,
        args: Vec<Expr>,
        l: usize,
        r: usize,
    ) -> Result<Expr, GrammarError<'s>> {
        make(ExprKind::Builtin { op, target, args }, l, r)
    }
}

/// `lhs = rhs`: the left side is parsed as an expression (so that `(a, b) = ..` needs no
/// lookahead beyond one token) and must turn out to be a name or a pair of names.
pub(crate) fn assign<'s>(lhs: Expr, rhs: Expr) -> Result<Stmt, GrammarError<'s>> {
    let span = lhs.span.to(rhs.span);
    let as_ident = |expr: &Expr| match &expr.kind {
        ExprKind::Name(name) => Some(Ident {
            name: name.clone(),
            span: expr.span,
        }),
        _ => None,
    };
    let target = match &lhs.kind {
        ExprKind::Name(_) => as_ident(&lhs).map(Target::Single),
        ExprKind::Pair(a, b) => as_ident(a)
            .zip(as_ident(b))
            .map(|(a, b)| Target::Pair(a, b)),
        _ => None,
    };
    match target {
        Some(target) => Ok(Stmt {
            kind: StmtKind::Assign { target, value: rhs },
            span,
        }),
        None => Err(ParseError::User {
            error: ParseFail::InvalidTarget(lhs.span),
        }),
    }
}

/// Parses a whole file. On success the program has its four sections; on failure the
/// diagnostics say why (the first syntax error stops the parse).
pub fn parse(src: &str) -> Result<Program, Vec<Diagnostic>> {
    let tokens = layout::tokenize(src).map_err(|d| vec![*d])?;
    let sections = grammar::SectionsParser::new()
        .parse(tokens.iter().copied())
        .map_err(|error| vec![describe(src, &tokens, error)])?;
    assemble(src, sections)
}

/// Puts the sections into a `Program`: each exactly once, in the order state, init, req, resp.
fn assemble(src: &str, sections: Vec<Section>) -> Result<Program, Vec<Diagnostic>> {
    const ORDER: [&str; 4] = ["state", "init", "req", "resp"];
    if sections.is_empty() {
        let span = Span::new(0, src.len().min(1));
        return Err(vec![
            Diagnostic::new(Code::EmptyProgram, span, "the file has no sections")
                .with_label("nothing here")
                .with_help("a policy has four sections, in order: `state:`, `init():`, `req(rpc):`, `resp(rpc):`"),
        ]);
    }
    let mut slots: [Option<(Section, Span)>; 4] = [None, None, None, None];
    let mut diagnostics = Vec::new();
    let mut last_index: Option<usize> = None;
    for section in sections {
        let (index, span) = match &section {
            Section::State(state) => (0, state.span),
            Section::Handler(handler) => (handler.kind as usize + 1, handler.span),
        };
        if let Some((_, first)) = &slots[index] {
            diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateSection,
                    span,
                    format!("the `{}` section appears twice", ORDER[index]),
                )
                .with_label("second one here")
                .with_secondary(*first, "first one here")
                .with_help("merge the two into one section"),
            );
            continue;
        }
        if let Some(last) = last_index.filter(|&last| last > index) {
            diagnostics.push(
                Diagnostic::new(
                    Code::SectionOrder,
                    span,
                    format!(
                        "the `{}` section must come before `{}`",
                        ORDER[index], ORDER[last]
                    ),
                )
                .with_label("out of order")
                .with_help("sections come in the order state, init, req, resp"),
            );
        }
        last_index = Some(last_index.map_or(index, |last| last.max(index)));
        slots[index] = Some((section, span));
    }
    let end = Span::new(src.len(), src.len());
    for (index, slot) in slots.iter().enumerate() {
        if slot.is_none() {
            let example = [
                "state:\n\tpass",
                "init():\n\tpass",
                "req(rpc):\n\tsend(rpc, Down)",
                "resp(rpc):\n\tsend(rpc, Up)",
            ][index];
            diagnostics.push(
                Diagnostic::new(
                    Code::MissingSection,
                    end,
                    format!("the `{}` section is missing", ORDER[index]),
                )
                .with_label("the file ends without it")
                .with_help(format!(
                    "add it (in the order state, init, req, resp), e.g.\n{example}"
                )),
            );
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let [state, init, req, resp] = slots.map(|slot| slot.map(|(section, _)| section));
    match (state, init, req, resp) {
        (
            Some(Section::State(state)),
            Some(Section::Handler(init)),
            Some(Section::Handler(req)),
            Some(Section::Handler(resp)),
        ) => Ok(Program {
            state,
            init,
            req,
            resp,
        }),
        _ => unreachable!("slots are filled by section kind"),
    }
}

/// Turns a lalrpop error into a diagnostic in the user's words.
fn describe(src: &str, tokens: &[layout::Spanned<'_>], error: GrammarError<'_>) -> Diagnostic {
    match error {
        ParseError::User {
            error: ParseFail::TooDeep(span),
        } => Diagnostic::new(
            Code::ExpressionTooDeep,
            span,
            format!("expression nested more than {MAX_EXPR_DEPTH} levels deep"),
        )
        .with_label("too deep to compile")
        .with_help("split it into several assignments to locals"),
        ParseError::User {
            error: ParseFail::InvalidTarget(span),
        } => Diagnostic::new(
            Code::InvalidTarget,
            span,
            "only a name or a pair of names can be assigned",
        )
        .with_label("cannot assign to this")
        .with_help("assign to a name (`x = ..`) or unpack a pair (`(a, b) = ..`); maps are written with `set(m, k, v)`"),
        ParseError::InvalidToken { location } => {
            Diagnostic::new(Code::InvalidCharacter, Span::new(location, location + 1), "invalid token")
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let span = Span::new(location, location);
            Diagnostic::new(Code::UnexpectedEof, span, "the file ends in the middle of a statement")
                .with_label(format!("expected {}", expected_words(&expected)))
        }
        ParseError::ExtraToken { token: (l, token, r) } => Diagnostic::new(
            Code::UnexpectedToken,
            Span::new(l, r),
            format!("unexpected {token}"),
        ),
        ParseError::UnrecognizedToken {
            token: (l, token, r),
            expected,
        } => {
            let previous = tokens
                .iter()
                .take_while(|(start, _, _)| *start < l)
                .last()
                .map(|(pl, token, pr)| (*token, Span::new(*pl, *pr)));
            unexpected(src, Span::new(l, r), token, previous, &expected)
        }
    }
}

fn unexpected(
    src: &str,
    span: Span,
    token: Token<'_>,
    previous: Option<(Token<'_>, Span)>,
    expected: &[String],
) -> Diagnostic {
    let expects = |terminal: &str| expected.iter().any(|e| e == terminal);
    let expects_expr = expects("NAME") && expects("INT");
    let label = format!("expected {}", expected_words(expected));
    // `size = 3`: the keyword was read as the start of a call; the `=` shows it was meant as
    // a name.
    if let (Token::Assign, Some((keyword, keyword_span))) = (token, previous)
        && let Some(text) = keyword.keyword_text()
    {
        return Diagnostic::new(
            Code::KeywordAsName,
            keyword_span,
            format!("`{text}` is a keyword and cannot be used as a name"),
        )
        .with_label("keyword")
        .with_help(format!("choose another name, e.g. `{text}_`"));
    }
    match token {
        Token::Minus if expects_expr => {
            Diagnostic::new(Code::UnaryMinus, span, "there is no unary minus")
                .with_label("a value was expected here")
                .with_help("subtract from zero instead: `0 - x`")
        }
        Token::Err => Diagnostic::new(
            Code::ErrOutsideSend,
            span,
            "`err(..)` can only be sent or matched",
        )
        .with_label("not allowed here")
        .with_help("answer with an error using `send(err('reason'), Up)`"),
        Token::EqEq | Token::Lt | Token::Gt | Token::Le | Token::Ge | Token::NotEq
            if !expects_expr && !expects("\"==\"") =>
        {
            Diagnostic::new(
                Code::ChainedComparison,
                span,
                "comparisons cannot be chained",
            )
            .with_label("a second comparison")
            .with_help("parenthesise the first comparison, or join two comparisons with `and`")
        }
        _ if token.keyword_text().is_some() && expects("NAME") => {
            let keyword = token.keyword_text().unwrap_or_default();
            Diagnostic::new(
                Code::KeywordAsName,
                span,
                format!("`{keyword}` is a keyword and cannot be used as a name"),
            )
            .with_label(label)
            .with_help(format!("choose another name, e.g. `{keyword}_`"))
        }
        Token::Indent => {
            let line_start = src[..span.start.min(src.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let width: usize = src[line_start..span.start.min(src.len())]
                .bytes()
                .map(|b| {
                    if b == b'\t' {
                        crate::token::TAB_WIDTH
                    } else {
                        1
                    }
                })
                .sum();
            Diagnostic::new(Code::UnexpectedToken, span, "unexpected indentation")
                .with_label(format!(
                    "this line is indented {width} columns, more than the line before"
                ))
                .with_help(
                    "indent a line only after a line that ends with `:`; a tab counts as 4 columns",
                )
        }
        Token::Newline(_) if expects("\")\"") => Diagnostic::new(
            Code::UnexpectedToken,
            line_end(src, span),
            "the line ends before the parenthesis is closed",
        )
        .with_label(label)
        .with_help("a call cannot span lines; join them or end the first with `\\`"),
        Token::Newline(_) => Diagnostic::new(
            Code::UnexpectedToken,
            line_end(src, span),
            "unexpected end of line",
        )
        .with_label(label),
        _ => Diagnostic::new(Code::UnexpectedToken, span, format!("unexpected {token}"))
            .with_label(label),
    }
}

/// A newline token's span covers the next line's indentation; point at the line end instead.
fn line_end(src: &str, span: Span) -> Span {
    let at = span.start.min(src.len());
    Span::new(at, (at + 1).min(src.len()).max(at))
}

/// lalrpop names terminals by their grammar spelling; say them the way a user would.
fn expected_words(expected: &[String]) -> String {
    let mut words: Vec<String> = Vec::new();
    let expects = |terminal: &str| expected.iter().any(|e| e == terminal);
    // Where any expression may start, say so instead of listing its first tokens.
    let expression = expects("NAME") && expects("INT") && expects("FLOAT") && expects("STR");
    const EXPRESSION_START: [&str; 12] = [
        "NAME",
        "INT",
        "FLOAT",
        "STR",
        "\"(\"",
        "\"get\"",
        "\"set\"",
        "\"delete\"",
        "\"byte_size\"",
        "\"size\"",
        "\"true\"",
        "\"false\"",
    ];
    if expression {
        words.push("an expression".to_string());
    }
    for terminal in expected {
        if expression && EXPRESSION_START.contains(&terminal.as_str()) {
            continue;
        }
        let word = match terminal.as_str() {
            "NAME" => "a name".to_string(),
            "INT" => "an integer".to_string(),
            "FLOAT" => "a number".to_string(),
            "STR" => "a string".to_string(),
            "NL" => "end of line".to_string(),
            "INDENT" => "an indented block".to_string(),
            "DEDENT" => "the end of the block".to_string(),
            quoted => format!("`{}`", quoted.trim_matches('"')),
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.len() {
        0 => "nothing more".to_string(),
        1 => words.remove(0),
        n if n <= 8 => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {last}", words.join(", "))
        }
        _ => format!("{} or another token", words[..7].join(", ")),
    }
}
