//! Every write body of a built-in kind goes through its type (`typed.rs`) before the pipeline,
//! in the shape the client wrote it (an `events.k8s.io` Event as one, before it is stored as a
//! core Event); unknown fields then follow `fieldValidation`, for built-in and custom kinds
//! alike.

use std::cell::RefCell;

use serde_json::Value;

use super::super::resources::ResourceType;
use super::super::status::ApiError;
use super::super::typed::{self, Decoded, TypeError};
use super::write::WriteContext;

/// `fieldValidation`: what to do with a field the kind does not declare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop it silently.
    Ignore,
    /// Drop it and say so in a `Warning` header (the server's default).
    #[default]
    Warn,
    /// Refuse the write (kubectl's default).
    Strict,
}

impl FieldValidation {
    /// The query parameter's value; an unset one is `Warn`.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("" | "Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// Warnings for the response's `Warning` headers, collected while the write runs.
#[derive(Debug, Default)]
pub struct Warnings(RefCell<Vec<String>>);

impl Warnings {
    pub fn push(&self, warning: String) {
        let mut warnings = self.0.borrow_mut();
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }

    pub fn take(&self) -> Vec<String> {
        self.0.take()
    }
}

/// A whole object written through `rt`, as its type reads it.
pub fn typed_body(rt: &ResourceType, ctx: &WriteContext, body: Value) -> Result<Value, ApiError> {
    match typed::decode(rt, &body) {
        None => Ok(body),
        Some(decoded) => accept(rt, ctx, decoded),
    }
}

/// A server-side apply configuration without the fields the kind does not declare (so that
/// its manager does not come to own them), its values as written.
pub fn apply_config(
    rt: &ResourceType,
    ctx: &WriteContext,
    config: Value,
) -> Result<Value, ApiError> {
    match typed::known_fields(rt, &config) {
        None => Ok(config),
        Some(decoded) => accept(rt, ctx, decoded),
    }
}

fn accept(
    rt: &ResourceType,
    ctx: &WriteContext,
    decoded: Result<Decoded, TypeError>,
) -> Result<Value, ApiError> {
    let decoded = decoded.map_err(|e| type_error(rt, &e))?;
    unknown_fields(rt, ctx, &decoded.unknown)?;
    Ok(decoded.object)
}

/// `fieldValidation` applied to the unknown fields of a write: refused under Strict, reported
/// under Warn, as the real server words both.
pub fn unknown_fields(
    rt: &ResourceType,
    ctx: &WriteContext,
    unknown: &[String],
) -> Result<(), ApiError> {
    if unknown.is_empty() {
        return Ok(());
    }
    match ctx.field_validation {
        FieldValidation::Ignore => Ok(()),
        FieldValidation::Warn => {
            for field in unknown {
                ctx.warnings.push(format!("unknown field {field:?}"));
            }
            Ok(())
        }
        FieldValidation::Strict => {
            let fields: Vec<String> = unknown
                .iter()
                .map(|p| format!("unknown field {p:?}"))
                .collect();
            Err(cannot_handle(
                rt,
                &format!("strict decoding error: {}", fields.join(", ")),
            ))
        }
    }
}

fn type_error(rt: &ResourceType, error: &TypeError) -> ApiError {
    let why = if error.field.is_empty() || error.field == "." {
        error.message.clone()
    } else {
        format!("field {}: {}", error.field, error.message)
    };
    cannot_handle(rt, &why)
}

/// 400, as a body the server cannot decode into the kind's type is answered.
fn cannot_handle(rt: &ResourceType, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: {why}",
        kind = rt.kind,
        version = rt.version,
    ))
}
