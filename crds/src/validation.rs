//! Field-path errors and the Kubernetes name rules that the CRD schema cannot check on its own.
//!
//! Errors name the field the way the API server does (`spec.addresses[2]`), so a message in an
//! Event points the user at the line to fix.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field path, as in `spec.addresses[2]`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every invalid field of one object, in the order found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Whether some error is about exactly this field.
    pub fn names_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label, as namespaces use: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= DNS1123_LABEL_MAX
        && value.chars().all(|c| is_alnum_lower(c) || c == '-')
        && value.starts_with(is_alnum_lower)
        && value.ends_with(is_alnum_lower)
}

/// RFC 1123 subdomain, as most object names use: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= DNS1123_SUBDOMAIN_MAX
        && value.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| is_alnum_lower(c) || c == '-')
                && part.starts_with(is_alnum_lower)
                && part.ends_with(is_alnum_lower)
        })
}

/// The name part of a label key, and a non-empty label value:
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_label_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= DNS1123_LABEL_MAX
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label key: an optional DNS subdomain prefix and `/`, then a label name.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Some(format!(
            "label key {key:?}: prefix {prefix:?} must be a lower-case DNS subdomain"
        ));
    }
    if !is_label_name(name) {
        return Some(format!(
            "label key {key:?}: name must be 1-63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ));
    }
    None
}

/// A label value: empty, or a label name.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() || is_label_name(value) {
        None
    } else {
        Some(format!(
            "label value {value:?} must be at most 63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// Checks a label selector as the API server does for built-in types
/// (`metav1validation.ValidateLabelSelector`).
pub fn validate_label_selector(
    selector: &LabelSelector,
    field: &str,
    errors: &mut ValidationErrors,
) {
    for (key, value) in selector.match_labels.iter().flatten() {
        let path = format!("{field}.matchLabels[{key}]");
        if let Some(problem) = label_key_problem(key).or_else(|| label_value_problem(value)) {
            errors.push(path, problem);
        }
    }
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let path = format!("{field}.matchExpressions[{i}]");
        if let Some(problem) = label_key_problem(&requirement.key) {
            errors.push(format!("{path}.key"), problem);
        }
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errors.push(
                format!("{path}.values"),
                format!(
                    "must be non-empty when operator is {}",
                    requirement.operator
                ),
            ),
            "Exists" | "DoesNotExist" if !values.is_empty() => errors.push(
                format!("{path}.values"),
                format!("must be empty when operator is {}", requirement.operator),
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {
                for (j, value) in values.iter().enumerate() {
                    if let Some(problem) = label_value_problem(value) {
                        errors.push(format!("{path}.values[{j}]"), problem);
                    }
                }
            }
            other => errors.push(
                format!("{path}.operator"),
                format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_label("team-a"));
        assert!(!is_dns1123_label("Team-a"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("pool.example.com"));
        assert!(!is_dns1123_subdomain("pool..example"));
    }

    #[test]
    fn label_keys_and_values() {
        assert_eq!(label_key_problem("portico.dev/zone"), None);
        assert_eq!(label_key_problem("zone"), None);
        assert!(label_key_problem("Bad_Prefix/zone").is_some());
        assert!(label_key_problem("portico.dev/").is_some());
        assert_eq!(label_value_problem(""), None);
        assert!(label_value_problem("a b").is_some());
    }
}
