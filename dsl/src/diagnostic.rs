//! Diagnostics as data: a code, a message, spans and an optional fix.
//!
//! Rendering is a separate step (`render`), so that the CLI can print the same diagnostics as
//! text or as JSON.

use crate::span::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Stable diagnostic codes. The numbers never change meaning; `docs/diagnostics.md` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    // Input and tokens.
    NotUtf8,
    InvalidCharacter,
    UnterminatedString,
    DoubleQuotedString,
    LeadingZero,
    // Layout.
    UnalignedDedent,
    BlocksTooDeep,
    ParensTooDeep,
    ExpressionTooDeep,
    // Grammar.
    UnexpectedToken,
    UnexpectedEof,
    KeywordAsName,
    UnaryMinus,
    InvalidTarget,
    ChainedComparison,
    UnsupportedOperator,
    // Program structure.
    EmptyProgram,
    MissingSection,
    SectionOrder,
    DuplicateSection,
    HandlerParams,
    // Names and types. (E0401, unknown name, became the warning W0006; the code is retired.)
    UnknownFunction,
    ArgumentCount,
    TypeMismatch,
    UnknownType,
    DuplicateState,
    AssignToConstant,
    IntegerRange,
    InvalidFloat,
    // Rules.
    ErrOutsideSend,
    SendDirection,
    SendValue,
    OptionMatchArms,
    MatchArms,
    VecUse,
    NeedsWireSchema,
    Unsupported,
    // Warnings: rules that some file AppNet accepts breaks (LANGUAGE.md §2).
    FlatPrecedence,
    Unreachable,
    Coercion,
    CompatSend,
    TypeNameCase,
    UndeclaredName,
    NoMeaning,
    IgnoredParams,
    // Refusals of `run` and `build` for constructs `lint` accepts.
    Meaningless,
    // The eBPF target (`build`).
    TargetUnsupported,
    NoExactInteger,
}

impl Code {
    /// The stable text of the code, e.g. `E0101`.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            NotUtf8 => "E0001",
            InvalidCharacter => "E0002",
            UnterminatedString => "E0003",
            DoubleQuotedString => "E0004",
            LeadingZero => "E0005",
            UnalignedDedent => "E0101",
            BlocksTooDeep => "E0102",
            ParensTooDeep => "E0103",
            ExpressionTooDeep => "E0104",
            UnexpectedToken => "E0201",
            UnexpectedEof => "E0202",
            KeywordAsName => "E0203",
            UnaryMinus => "E0204",
            InvalidTarget => "E0205",
            ChainedComparison => "E0206",
            UnsupportedOperator => "E0207",
            EmptyProgram => "E0301",
            MissingSection => "E0302",
            SectionOrder => "E0303",
            DuplicateSection => "E0304",
            HandlerParams => "E0305",
            UnknownFunction => "E0402",
            ArgumentCount => "E0403",
            TypeMismatch => "E0404",
            UnknownType => "E0405",
            DuplicateState => "E0406",
            AssignToConstant => "E0407",
            IntegerRange => "E0408",
            InvalidFloat => "E0409",
            ErrOutsideSend => "E0501",
            SendDirection => "E0502",
            SendValue => "E0503",
            OptionMatchArms => "E0504",
            MatchArms => "E0505",
            VecUse => "E0506",
            NeedsWireSchema => "E0507",
            Unsupported => "E0508",
            FlatPrecedence => "W0001",
            Unreachable => "W0002",
            Coercion => "W0003",
            CompatSend => "W0004",
            TypeNameCase => "W0005",
            UndeclaredName => "W0006",
            NoMeaning => "W0007",
            IgnoredParams => "W0008",
            Meaningless => "E0509",
            TargetUnsupported => "E0601",
            NoExactInteger => "E0602",
        }
    }

    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }
}

/// A secondary place the diagnostic points at, with a few words about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The primary place; its label text is `label`.
    pub span: Span,
    pub label: String,
    pub secondary: Vec<Label>,
    /// How to fix it, when there is one obvious fix.
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
}

/// True when any of the diagnostics is an error (warnings do not stop the pipeline).
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}
