//! Validation of custom objects against their CRD's structural schema, as the API server does
//! before storing them: OpenAPI constraints (type, required, enum, pattern, lengths, item
//! counts, bounds) with upstream's wording, then the `x-kubernetes-validations` CEL rules (by
//! the `kube-cel` crate, the engine Portico's CRD tests already use).

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::status::FieldError;

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    if schema["x-kubernetes-int-or-string"] == true {
        return matches!(type_name(value), "integer" | "string");
    }
    match schema["type"].as_str() {
        None => true,
        Some("number") => matches!(type_name(value), "integer" | "number"),
        Some(expected) => type_name(value) == expected,
    }
}

/// The value as the apiserver quotes it in messages: strings quoted, others plain.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) | Value::Array(_) => format!("{:?}", type_name(value)),
        other => other.to_string(),
    }
}

thread_local! {
    static PATTERNS: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

fn pattern_matches(pattern: &str, text: &str) -> bool {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let regex = cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok());
        // A pattern this engine cannot compile is not held against the object.
        regex.as_ref().is_none_or(|r| r.is_match(text))
    })
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if schema["nullable"] != true && !schema["type"].is_null() {
            errors.push(FieldError::invalid(
                path,
                "\"null\"",
                &format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or_default()
                ),
            ));
        }
        return;
    }
    if !type_matches(schema, value) {
        let expected = schema["type"].as_str().unwrap_or_default();
        let actual = type_name(value);
        errors.push(FieldError {
            field: path.to_string(),
            reason: "FieldValueTypeInvalid",
            detail: format!("Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""),
        });
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        errors.push(FieldError {
            field: path.to_string(),
            reason: "FieldValueNotSupported",
            detail: format!(
                "Unsupported value: {}: supported values: {}",
                shown(value),
                list.join(", ")
            ),
        });
    }
    match value {
        Value::String(text) => {
            if let Some(pattern) = schema["pattern"].as_str()
                && !pattern_matches(pattern, text)
            {
                errors.push(FieldError::invalid(
                    path,
                    shown(value),
                    &format!("{path} in body should match '{pattern}'"),
                ));
            }
            if let Some(max) = schema["maxLength"].as_u64()
                && text.chars().count() as u64 > max
            {
                errors.push(FieldError {
                    field: path.into(),
                    reason: "FieldValueTooLong",
                    detail: format!("Too long: may not be more than {max} bytes"),
                });
            }
            if let Some(min) = schema["minLength"].as_u64()
                && (text.chars().count() as u64) < min
            {
                errors.push(FieldError::invalid(
                    path,
                    shown(value),
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema["minimum"].as_f64()
                && x < min
            {
                errors.push(FieldError::invalid(
                    path,
                    n,
                    &format!(
                        "{path} in body should be greater than or equal to {}",
                        schema["minimum"]
                    ),
                ));
            }
            if let Some(max) = schema["maximum"].as_f64()
                && x > max
            {
                errors.push(FieldError::invalid(
                    path,
                    n,
                    &format!(
                        "{path} in body should be less than or equal to {}",
                        schema["maximum"]
                    ),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                errors.push(FieldError {
                    field: path.into(),
                    reason: "FieldValueTooMany",
                    detail: format!("Too many: {}: must have at most {max} items", items.len()),
                });
            }
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                errors.push(FieldError::invalid(
                    path,
                    items.len(),
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(map) => {
            for required in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(required) {
                    errors.push(FieldError {
                        field: join(path, required),
                        reason: "FieldValueRequired",
                        detail: "Required value".into(),
                    });
                }
            }
            let properties = schema["properties"].as_object();
            for (key, child) in map {
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(property) = properties.and_then(|p| p.get(key)) {
                    check(property, child, &join(path, key), errors);
                } else if schema["additionalProperties"].is_object() {
                    check(
                        &schema["additionalProperties"],
                        child,
                        &format!("{path}[{key}]"),
                        errors,
                    );
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Every way `object` breaks `schema`; CEL rules run only on an object that passes the rest,
/// as upstream skips them when the schema checks already failed.
/// The `type` of the schema at a field path such as `spec.addresses[0]` (`object` where the
/// schema does not say).
fn type_at<'a>(schema: &'a Value, field: &str) -> &'a str {
    let mut at = schema;
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        let name = pieces.next().unwrap_or_default();
        if !name.is_empty() {
            at = match at["properties"].get(name) {
                Some(property) => property,
                None => &at["additionalProperties"],
            };
        }
        for _index in pieces {
            at = if at["items"].is_object() {
                &at["items"]
            } else {
                &at["additionalProperties"]
            };
        }
    }
    at["type"].as_str().unwrap_or("object")
}

pub fn validate(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check(schema, object, "", &mut errors);
    if !errors.is_empty() {
        return errors;
    }
    if let Err(failures) = kube_cel::validate(schema, object, old) {
        for failure in failures.into_vec() {
            let field = failure.field_path.trim_start_matches('.').to_string();
            let reason = match failure.reason.as_deref() {
                Some("FieldValueForbidden") => "FieldValueForbidden",
                Some("FieldValueRequired") => "FieldValueRequired",
                Some("FieldValueDuplicate") => "FieldValueDuplicate",
                _ => "FieldValueInvalid",
            };
            let type_ = type_at(schema, &field);
            errors.push(FieldError {
                field,
                reason,
                // Upstream reports a rule's failure with the schema type of the field the
                // rule sits on as the value (`spec: Invalid value: "object": ...`).
                detail: format!("Invalid value: {type_:?}: {}", failure.message),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["addresses"], "properties": {
            "addresses": {"type": "array", "maxItems": 2, "items": {"type": "string", "pattern": "^[0-9./-]+$"}},
            "autoAssign": {"type": "boolean"},
            "mode": {"type": "string", "enum": ["a", "b"]}},
            "x-kubernetes-validations": [{"rule": "!has(self.mode) || self.mode != 'b' || self.autoAssign", "message": "mode b needs autoAssign"}]}}})
    }

    #[test]
    fn openapi_constraints_are_reported_with_upstream_wording() {
        let object =
            json!({"spec": {"addresses": ["x", "1", "2"], "autoAssign": "yes", "mode": "c"}});
        let errors = validate(&schema(), &object, None);
        let rendered: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect();
        assert!(
            rendered
                .contains(&"spec.addresses: Too many: 3: must have at most 2 items".to_string()),
            "{rendered:?}"
        );
        assert!(rendered.contains(&"spec.addresses[0]: Invalid value: \"x\": spec.addresses[0] in body should match '^[0-9./-]+$'".to_string()), "{rendered:?}");
        assert!(rendered.contains(&"spec.autoAssign: Invalid value: \"string\": spec.autoAssign in body must be of type boolean: \"string\"".to_string()), "{rendered:?}");
        assert!(
            rendered.contains(
                &"spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"".to_string()
            ),
            "{rendered:?}"
        );
        let missing = validate(&schema(), &json!({"spec": {}}), None);
        assert_eq!(missing[0].field, "spec.addresses");
        assert_eq!(missing[0].reason, "FieldValueRequired");
    }

    #[test]
    fn cel_rules_run_on_objects_that_pass_the_schema() {
        let errors = validate(
            &schema(),
            &json!({"spec": {"addresses": ["1"], "mode": "b", "autoAssign": false}}),
            None,
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec");
        assert_eq!(
            errors[0].detail,
            "Invalid value: \"object\": mode b needs autoAssign"
        );
        assert_eq!(type_at(&schema(), "spec.addresses[1]"), "string");
        assert!(
            validate(
                &schema(),
                &json!({"spec": {"addresses": ["1"], "mode": "b", "autoAssign": true}}),
                None
            )
            .is_empty()
        );
    }
}
