//! JSON forms of diagnostics and interpreter values (documented in `docs/json.md`).

use serde_json::{Value as Json, json};
use simplebpf_dsl::Diagnostic;
use simplebpf_dsl::decimal::to_decimal_string;
use simplebpf_dsl::interp::{Action, Outcome, Value};

/// A diagnostic with its span as byte offsets and as 1-based line and column (in chars).
pub fn diagnostic(file: &str, src: &str, diagnostic: &Diagnostic) -> Json {
    let position = |offset: usize| {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or_else(|| {
            let mut at = offset;
            while !src.is_char_boundary(at) {
                at -= 1;
            }
            &src[..at]
        });
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        json!({ "offset": offset, "line": line, "column": column })
    };
    let span = |span: simplebpf_dsl::Span| json!({ "start": position(span.start), "end": position(span.end) });
    json!({
        "file": file,
        "severity": diagnostic.severity().as_str(),
        "code": diagnostic.code.as_str(),
        "message": diagnostic.message,
        "span": span(diagnostic.span),
        "label": diagnostic.label,
        "labels": diagnostic.secondary.iter().map(|l| json!({
            "span": span(l.span),
            "message": l.message,
        })).collect::<Vec<_>>(),
        "help": diagnostic.help,
        "notes": diagnostic.notes,
    })
}

/// Exact values: floats as decimal strings (or `p/q`), so no precision is lost.
pub fn value(value: &Value) -> Json {
    match value {
        Value::Int(v) => json!(v),
        Value::Uint(v) => json!(v),
        Value::Float(v) => json!(to_decimal_string(v)),
        Value::Bool(v) => json!(v),
        Value::Instant(v) => json!({ "instant_ns": v }),
        Value::Str(v) => json!(v),
        Value::Pair(a, b) => json!([self::value(a), self::value(b)]),
        Value::Option(None) => Json::Null,
        Value::Option(Some(v)) => json!({ "some": self::value(v) }),
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| json!([self::value(k), self::value(v)]))
                .collect(),
        ),
        Value::Vec(len) => json!({ "len": len }),
    }
}

pub fn outcome(outcome: &Outcome) -> Json {
    let (action, reason) = match &outcome.action {
        Action::Forward => ("forward", None),
        Action::Reject { reason } => ("reject", Some(reason.clone())),
    };
    json!({
        "action": action,
        "reason": reason,
        "draws_used": outcome.draws_used,
        "state": outcome.state.vars.iter().map(|(name, v)| (name.clone(), value(v))).collect::<serde_json::Map<_, _>>(),
        "records": outcome.records.iter().map(|r| json!({ "vec": r.vec, "value": value(&r.value) })).collect::<Vec<_>>(),
    })
}
