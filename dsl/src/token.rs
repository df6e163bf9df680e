//! The tokens of LANGUAGE.md §1.2, produced by logos.
//!
//! `Indent` and `Dedent` are never produced by the lexer itself: the layout pass inserts them.

use logos::Logos;
use std::fmt;

/// Columns a tab counts for in indentation: exactly four, not "to the next tab stop",
/// because AppNet's indenter counts that way and real files mix tabs and spaces.
pub const TAB_WIDTH: usize = 4;

#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq)]
#[logos(skip r"[ \t\f]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
#[logos(skip r"\\[ \t\f]*\r?\n")]
pub enum Token<'s> {
    /// A line break; the value is the indentation width of the following line.
    #[regex(r"\r?\n[ \t]*", |lex| indent_width(lex.slice()))]
    Newline(usize),
    Indent,
    Dedent,

    #[token("state")]
    State,
    #[token("init")]
    Init,
    #[token("req")]
    Req,
    #[token("resp")]
    Resp,
    #[token("pass")]
    Pass,
    #[token("send")]
    Send,
    #[token("err")]
    Err,
    #[token("Up")]
    Up,
    #[token("Down")]
    Down,
    #[token("get")]
    Get,
    #[token("set")]
    Set,
    #[token("delete")]
    Delete,
    #[token("byte_size")]
    ByteSize,
    #[token("size")]
    Size,
    #[token("match")]
    Match,
    #[token("foreach")]
    Foreach,
    #[token("lambda")]
    Lambda,
    #[token("Some")]
    Some,
    #[token("None")]
    None,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("Vec")]
    Vec,
    #[token("Map")]
    Map,

    #[regex(r"[\p{L}_][\p{L}\p{N}_]*")]
    Name(&'s str),
    #[regex(r"[1-9](_?[0-9])*|0")]
    Int(&'s str),
    #[regex(r"[0-9](_?[0-9])*[eE][+-]?[0-9](_?[0-9])*")]
    #[regex(r"(\.[0-9](_?[0-9])*|[0-9](_?[0-9])*\.([0-9](_?[0-9])*)?)([eE][+-]?[0-9](_?[0-9])*)?")]
    Float(&'s str),
    /// The text between the quotes.
    #[regex(r"'[^'\n]*'", |lex| { let s = lex.slice(); &s[1..s.len() - 1] })]
    Str(&'s str),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("=")]
    Assign,
    #[token("=>")]
    Arrow,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("@")]
    At,

    // Tokens that only exist to give a precise error.
    #[regex(r"'[^'\n]*")]
    UnterminatedStr,
    #[regex(r#""[^"\n]*"?"#)]
    DoubleQuotedStr,
    #[regex(r"0(_?[0-9])+")]
    LeadingZeroInt,
    #[regex(r"[%&|^~!]")]
    BadOperator(&'s str),
}

fn indent_width(newline: &str) -> usize {
    let after = &newline[newline.rfind('\n').map_or(0, |i| i + 1)..];
    after
        .bytes()
        .map(|b| if b == b'\t' { TAB_WIDTH } else { 1 })
        .sum()
}

impl Token<'_> {
    /// Keywords that a user might try to use as a name.
    pub fn keyword_text(&self) -> Option<&'static str> {
        Some(match self {
            Token::State => "state",
            Token::Init => "init",
            Token::Req => "req",
            Token::Resp => "resp",
            Token::Pass => "pass",
            Token::Send => "send",
            Token::Err => "err",
            Token::Up => "Up",
            Token::Down => "Down",
            Token::Get => "get",
            Token::Set => "set",
            Token::Delete => "delete",
            Token::ByteSize => "byte_size",
            Token::Size => "size",
            Token::Match => "match",
            Token::Foreach => "foreach",
            Token::Lambda => "lambda",
            Token::Some => "Some",
            Token::None => "None",
            Token::True => "true",
            Token::False => "false",
            Token::And => "and",
            Token::Or => "or",
            Token::Vec => "Vec",
            Token::Map => "Map",
            _ => return None,
        })
    }
}

impl fmt::Display for Token<'_> {
    /// How a token is named in a diagnostic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(keyword) = self.keyword_text() {
            return write!(f, "keyword `{keyword}`");
        }
        match self {
            Token::Newline(_) => write!(f, "end of line"),
            Token::Indent => write!(f, "an indented block"),
            Token::Dedent => write!(f, "the end of a block"),
            Token::Name(name) => write!(f, "name `{name}`"),
            Token::Int(text) => write!(f, "integer `{text}`"),
            Token::Float(text) => write!(f, "number `{text}`"),
            Token::Str(text) => write!(f, "string '{text}'"),
            Token::LParen => write!(f, "`(`"),
            Token::RParen => write!(f, "`)`"),
            Token::Comma => write!(f, "`,`"),
            Token::Colon => write!(f, "`:`"),
            Token::Assign => write!(f, "`=`"),
            Token::Arrow => write!(f, "`=>`"),
            Token::EqEq => write!(f, "`==`"),
            Token::NotEq => write!(f, "`!=`"),
            Token::Lt => write!(f, "`<`"),
            Token::Gt => write!(f, "`>`"),
            Token::Le => write!(f, "`<=`"),
            Token::Ge => write!(f, "`>=`"),
            Token::Plus => write!(f, "`+`"),
            Token::Minus => write!(f, "`-`"),
            Token::Star => write!(f, "`*`"),
            Token::Slash => write!(f, "`/`"),
            Token::At => write!(f, "`@`"),
            Token::UnterminatedStr => write!(f, "an unterminated string"),
            Token::DoubleQuotedStr => write!(f, "a double-quoted string"),
            Token::LeadingZeroInt => write!(f, "an integer with a leading zero"),
            Token::BadOperator(op) => write!(f, "`{op}`"),
            _ => unreachable!("keywords are named above"),
        }
    }
}
