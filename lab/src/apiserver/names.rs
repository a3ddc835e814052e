//! The name grammars of `k8s.io/apimachinery/pkg/util/validation`, each returning upstream's
//! messages (empty when the value is valid), and the object metadata rules every kind shares
//! (`ValidateObjectMeta`: label keys and values, annotation keys).

use serde_json::Value;

use super::status::FieldError;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";

/// `validation.RegexError`: the message, examples and the pattern.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join("or ")
    )
}

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `[A-Za-z0-9]` at both ends, `[-A-Za-z0-9_.]` inside.
fn is_name_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `IsDNS1123Label`.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len(63));
    }
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !ok {
        errors.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errors
}

/// `IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name part.
pub fn qualified_name(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec!["prefix part must be non-empty".into()];
            }
            if !super::meta::is_dns_subdomain(prefix) {
                return vec![format!(
                    "prefix part {}",
                    regex_error(
                        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                        "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                        &["example.com"],
                    )
                )];
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"],
                )
            )];
        }
    };
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errors.push(format!("name part {}", max_len(63)));
    }
    if !name.is_empty() && !is_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            )
        ));
    }
    errors
}

/// `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len(63));
    }
    if !value.is_empty() && !is_name_part(value) {
        errors.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// `IsValidPortName`: an IANA service name.
pub fn port_name(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 15 {
        errors.push(max_len(15));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors
            .push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if value.contains("--") {
        errors.push("must not contain consecutive hyphens".into());
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".into());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errors.push("must not begin or end with a hyphen".into());
    }
    errors
}

/// One `FieldValueInvalid` per message, as upstream reports a value failing several rules.
pub fn invalid_each(field: &str, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .iter()
        .map(|m| FieldError::invalid(field, format!("{value:?}"), m))
        .collect()
}

/// `ValidateLabels` for a `map[string]string` at `field` (labels, or a Service's selector).
pub fn labels(field: &str, labels: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels.as_object().into_iter().flatten() {
        errors.extend(invalid_each(field, key, qualified_name(key)));
        let value = value.as_str().unwrap_or_default();
        errors.extend(invalid_each(field, value, label_value(value)));
    }
    errors
}

/// The metadata rules every kind shares: label keys and values, annotation keys and their
/// total size.
pub fn object_meta(object: &Value) -> Vec<FieldError> {
    let meta = &object["metadata"];
    let mut errors = labels("metadata.labels", &meta["labels"]);
    let mut total = 0;
    for (key, value) in meta["annotations"].as_object().into_iter().flatten() {
        errors.extend(invalid_each(
            "metadata.annotations",
            key,
            qualified_name(&key.to_lowercase()),
        ));
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    const ANNOTATIONS_MAX: usize = 256 * 1024;
    if total > ANNOTATIONS_MAX {
        errors.push(FieldError {
            field: "metadata.annotations".into(),
            reason: "FieldValueTooLong",
            detail: format!("Too long: may not be more than {ANNOTATIONS_MAX} bytes"),
        });
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qualified_names_take_an_optional_dns_prefix() {
        assert!(qualified_name("app").is_empty());
        assert!(qualified_name("portico.dev/pool").is_empty());
        assert!(!qualified_name("bad key!").is_empty());
        assert_eq!(
            qualified_name("/x"),
            ["prefix part must be non-empty".to_string()]
        );
        assert!(!qualified_name("a/b/c").is_empty());
    }

    #[test]
    fn port_names_are_iana_service_names() {
        assert!(port_name("http").is_empty());
        assert!(!port_name("A_B").is_empty());
        assert!(!port_name("80").is_empty());
        assert!(!port_name("a--b").is_empty());
        assert!(!dns1123_label("A_B").is_empty());
        assert!(dns1123_label("http-2").is_empty());
    }

    #[test]
    fn labels_and_annotations_are_checked_on_every_kind() {
        let object = json!({"metadata": {"labels": {"app": "web", "bad key!": "x", "ok": "bad value!"},
            "annotations": {"Portico.dev/Mixed": "fine", "no spaces allowed": "x"}}});
        let errors = object_meta(&object);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["metadata.labels", "metadata.labels", "metadata.annotations"]
        );
        assert!(errors[0].detail.starts_with("Invalid value: \"bad key!\""));
    }
}
