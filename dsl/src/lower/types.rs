//! The `state:` section: declared types, decorators, capacities.

use super::*;
use crate::ast::{DecoratorArg, TypeExpr};

const SCALARS: [(&str, Type); 6] = [
    ("int", Type::Int),
    ("uint", Type::Uint),
    ("float", Type::Float),
    ("bool", Type::Bool),
    ("Instant", Type::Instant),
    ("string", Type::Str),
];

impl Lowerer {
    pub(super) fn state(&mut self, section: &ast::StateSection) {
        for def in &section.vars {
            let ty = self.type_expr(&def.ty);
            let name = &def.name.name;
            if let Some(first) = self.state_by_name.get(name) {
                let first_span = self.state[first.0 as usize].span;
                self.error(
                    Diagnostic::new(
                        Code::DuplicateState,
                        def.name.span,
                        format!("the state variable `{name}` is declared twice"),
                    )
                    .with_label("declared again here")
                    .with_secondary(first_span, "first declared here")
                    .with_help("remove one of the declarations or rename it"),
                );
                continue;
            }
            if matches!(name.as_str(), "inf" | "inf_f") {
                self.error(
                    Diagnostic::new(
                        Code::AssignToConstant,
                        def.name.span,
                        format!("`{name}` is a predefined constant"),
                    )
                    .with_label("cannot be a state variable")
                    .with_help("choose another name"),
                );
                continue;
            }
            let mut capacity = matches!(ty, Type::Map(..)).then_some(ir::DEFAULT_MAP_CAPACITY);
            let mut decorators = Vec::new();
            for decorator in &def.decorators {
                let arg = match &decorator.arg {
                    DecoratorArg::Name(name) => name.clone(),
                    DecoratorArg::Bool(value) => value.to_string(),
                    DecoratorArg::Int(digits) => digits.clone(),
                };
                if decorator.name.name == "capacity" {
                    capacity = self.capacity(decorator, &ty);
                } else {
                    decorators.push((decorator.name.name.clone(), arg));
                }
            }
            let id = StateId(self.state.len() as u32);
            self.state.push(ir::StateVar {
                name: name.clone(),
                ty,
                capacity,
                written_by_handlers: false,
                decorators,
                span: def.name.span,
            });
            self.state_by_name.insert(name.clone(), id);
        }
    }

    fn capacity(&mut self, decorator: &ast::Decorator, ty: &Type) -> Option<u64> {
        let parsed = match &decorator.arg {
            DecoratorArg::Int(digits) => digits.parse::<u64>().ok().filter(|n| *n > 0),
            _ => None,
        };
        match (ty, parsed) {
            (Type::Map(..), Some(n)) if n <= u32::MAX as u64 => Some(n),
            (Type::Map(..), _) => {
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        decorator.name.span,
                        "`@capacity` takes a number of entries from 1 to 4294967295",
                    )
                    .with_label("invalid capacity")
                    .with_help("write e.g. `@capacity(1024)`"),
                );
                Some(ir::DEFAULT_MAP_CAPACITY)
            }
            _ => {
                self.error(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        decorator.name.span,
                        "`@capacity` applies to maps only",
                    )
                    .with_label("this variable is not a map"),
                );
                None
            }
        }
    }

    pub(super) fn type_expr(&mut self, ty: &TypeExpr) -> Type {
        match ty {
            TypeExpr::Named(ident) => self.named_type(ident),
            TypeExpr::Pair(a, b, _) => {
                Type::Pair(Box::new(self.type_expr(a)), Box::new(self.type_expr(b)))
            }
            TypeExpr::Vec(elem, _) => Type::Vec(Box::new(self.type_expr(elem))),
            TypeExpr::Map(key, value, _) => Type::Map(
                Box::new(self.type_expr(key)),
                Box::new(self.type_expr(value)),
            ),
        }
    }

    fn named_type(&mut self, ident: &ast::Ident) -> Type {
        if let Some((_, ty)) = SCALARS.iter().find(|(name, _)| *name == ident.name) {
            return ty.clone();
        }
        // AppNet's backends read type names loosely; real elements write `instant`.
        if let Some((name, ty)) = SCALARS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&ident.name))
        {
            self.error(
                Diagnostic::new(
                    Code::TypeNameCase,
                    ident.span,
                    format!("type `{}` is read as `{name}`", ident.name),
                )
                .with_label(format!("means `{name}`"))
                .with_help(format!("write `{name}`")),
            );
            return ty.clone();
        }
        let mut diagnostic = Diagnostic::new(
            Code::UnknownType,
            ident.span,
            format!("unknown type `{}`", ident.name),
        )
        .with_label("not a type");
        diagnostic = match closest(&ident.name, SCALARS.iter().map(|(name, _)| *name)) {
            Some(name) => diagnostic.with_help(format!("did you mean `{name}`?")),
            None => diagnostic.with_help(
                "the types are int, uint, float, bool, Instant, string, <A, B>, Vec<T>, Map<K, V>",
            ),
        };
        self.error(diagnostic);
        Type::Unknown
    }
}
