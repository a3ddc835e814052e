//! Errors as the API server reports them: a `Status` object whose `code` and `reason` clients
//! switch on (kube-rs's `ErrorResponse`, client-go's `errors.IsNotFound` and friends), with the
//! same messages the real server writes so that logs and tests read alike.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::ResourceType;

/// One invalid field, as `details.causes[]` of a 422 lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub reason: &'static str,
    /// The message without the field path, e.g. `Invalid value: 40000: provided port is ...`.
    pub detail: String,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, why: &str) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            detail: format!("Invalid value: {value}: {why}"),
        }
    }

    pub fn required(field: impl Into<String>, why: &str) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueRequired",
            detail: format!("Required value: {why}"),
        }
    }

    pub fn forbidden(field: impl Into<String>, why: &str) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueForbidden",
            detail: format!("Forbidden: {why}"),
        }
    }
}

/// A failed request: becomes a `Status` body with `code` as the HTTP status.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut details = json!({ "name": name, "kind": rt.plural });
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    details
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(details(rt, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", rt.group_resource()),
            )
        }
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        ApiError {
            details: Some(json!({ "name": namespace, "kind": "namespaces" })),
            ..Self::new(
                404,
                "NotFound",
                format!("namespaces \"{namespace}\" not found"),
            )
        }
    }

    /// A path the server does not serve at all (no such group, version or resource).
    pub fn no_route() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(details(rt, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.group_resource()),
            )
        }
    }

    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(details(rt, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                     please apply your changes to the latest version and try again",
                    rt.group_resource()
                ),
            )
        }
    }

    pub fn precondition_failed(rt: &ResourceType, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(rt, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    rt.group_resource()
                ),
            )
        }
    }

    /// 422 with one cause per field, worded as `field.ErrorList.ToAggregate()` words it.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let rendered: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect();
        let joined = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "reason": e.reason, "message": e.detail, "field": e.field }))
            .collect();
        let mut details = json!({ "name": name, "kind": kind, "causes": causes });
        // `schema.GroupKind.String()`: the group follows the kind, as in `AddressPool.portico.dev`.
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            details["group"] = json!(group);
            format!("{kind}.{group}")
        };
        ApiError {
            details: Some(details),
            ..Self::new(
                422,
                "Invalid",
                format!("{qualified} \"{name}\" is invalid: {joined}"),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_allowed() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        }
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({content_type})"
            ),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = super::respond::json(code, &self.to_status());
        // As the real server: clients (client-go, kube-rs) wait this long before retrying.
        if let Some(seconds) = self
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_u64())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_field_in_message_and_causes() {
        let errors = vec![
            FieldError::invalid(
                "spec.ports[0].nodePort",
                40000,
                "provided port is not in the valid range",
            ),
            FieldError::required("metadata.name", "name or generateName is required"),
        ];
        let status = ApiError::invalid("Service", "", "web", &errors).to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "spec.ports[0].nodePort"
        );
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .starts_with("Service \"web\" is invalid: [spec.ports[0].nodePort")
        );
    }
}
