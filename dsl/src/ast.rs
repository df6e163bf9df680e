//! The syntax tree, as written, with source spans. Meaning lives in the IR, not here.

use crate::span::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub state: StateSection,
    pub init: Handler,
    pub req: Handler,
    pub resp: Handler,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSection {
    pub vars: Vec<StateDef>,
    /// The `state` keyword.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDef {
    pub decorators: Vec<Decorator>,
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decorator {
    pub name: Ident,
    pub arg: DecoratorArg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecoratorArg {
    Name(String),
    Bool(bool),
    Int(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExpr {
    Named(Ident),
    Pair(Box<TypeExpr>, Box<TypeExpr>, Span),
    Vec(Box<TypeExpr>, Span),
    Map(Box<TypeExpr>, Box<TypeExpr>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(ident) => ident.span,
            TypeExpr::Pair(_, _, span) | TypeExpr::Vec(_, span) | TypeExpr::Map(_, _, span) => {
                *span
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HandlerKind {
    Init,
    Req,
    Resp,
}

impl HandlerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HandlerKind::Init => "init",
            HandlerKind::Req => "req",
            HandlerKind::Resp => "resp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub kind: HandlerKind,
    /// `None` when the parentheses are left out (`req:`).
    pub params: Option<Vec<Ident>>,
    pub body: Block,
    /// The handler's keyword.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    Pass,
    Expr(Expr),
    Assign {
        target: Target,
        value: Expr,
    },
    Send {
        value: SendValue,
        dir: Direction,
        dir_span: Span,
    },
    Match {
        scrutinee: Expr,
        arms: Vec<Arm>,
    },
    Foreach {
        collection: Ident,
        param: Ident,
        body: Block,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Single(Ident),
    Pair(Ident, Ident),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendValue {
    Expr(Expr),
    Err(ErrArg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrArg {
    pub value: ErrValue,
    /// The whole `err(..)`.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrValue {
    Str(String),
    Name(Ident),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub pattern: Pattern,
    pub body: Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub kind: PatternKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternKind {
    Literal(Literal),
    /// `_` is the wildcard; AppNet's grammar allows any name here.
    Name(String),
    None,
    Some(Ident),
    SomeErr(ErrArg),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// Decimal digits, underscores removed.
    Int(String),
    /// The literal's text, underscores removed; its exact value is a rational.
    Float(String),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of the tree below (a leaf is 1). Kept so that the parser can refuse trees deep
    /// enough to overflow the stack of the recursive passes.
    pub depth: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    Name(String),
    Lit(Literal),
    Paren(Box<Expr>),
    Pair(Box<Expr>, Box<Expr>),
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `get`, `set`, `delete`, `byte_size`, `size`: keywords whose first argument is a name.
    Builtin {
        op: BuiltinOp,
        target: Ident,
        args: Vec<Expr>,
    },
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        use BinOp::*;
        match self {
            Or => "or",
            And => "and",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Gt => ">",
            Le => "<=",
            Ge => ">=",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
        }
    }

    /// Binding strength under conventional precedence (LANGUAGE.md §1.4).
    pub fn precedence(self) -> u8 {
        use BinOp::*;
        match self {
            Or => 1,
            And => 2,
            Eq | Ne | Lt | Gt | Le | Ge => 3,
            Add | Sub => 4,
            Mul | Div => 5,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinOp {
    Get,
    Set,
    Delete,
    ByteSize,
    Size,
}

impl BuiltinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinOp::Get => "get",
            BuiltinOp::Set => "set",
            BuiltinOp::Delete => "delete",
            BuiltinOp::ByteSize => "byte_size",
            BuiltinOp::Size => "size",
        }
    }
}

impl Expr {
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let depth = 1 + match &kind {
            ExprKind::Name(_) | ExprKind::Lit(_) => 0,
            ExprKind::Paren(inner) => inner.depth,
            ExprKind::Pair(a, b) | ExprKind::Binary { lhs: a, rhs: b, .. } => a.depth.max(b.depth),
            ExprKind::Builtin { args, .. } | ExprKind::Call { args, .. } => {
                args.iter().map(|a| a.depth).max().unwrap_or(0)
            }
        };
        Expr { kind, span, depth }
    }

    /// Strips any number of enclosing parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut expr = self;
        while let ExprKind::Paren(inner) = &expr.kind {
            expr = inner;
        }
        expr
    }
}
