//! CustomResourceDefinitions: validating one, marking it Established (there is no
//! asynchronous controller here, so it is established as it is stored), and turning its served
//! versions into resource types the router and discovery pick up at once.

use serde_json::{Value, json};

use super::meta::now_rfc3339;
use super::resources::{PrinterColumn, ResourceType};
use super::status::FieldError;

/// Validates a CRD, fills in its status, and returns the kinds it serves.
pub fn prepare(crd: &mut Value) -> Result<Vec<ResourceType>, Vec<FieldError>> {
    let spec = crd["spec"].clone();
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let mut errors = Vec::new();
    if group.is_empty() {
        errors.push(FieldError::required("spec.group", ""));
    }
    if plural.is_empty() {
        errors.push(FieldError::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        errors.push(FieldError::required("spec.names.kind", ""));
    }
    if name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            format!("{name:?}"),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = spec["scope"].as_str().unwrap_or_default();
    if !matches!(scope, "Namespaced" | "Cluster") {
        errors.push(FieldError::invalid(
            "spec.scope",
            format!("{scope:?}"),
            "supported values: \"Cluster\", \"Namespaced\"",
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errors.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage: Vec<&Value> = versions.iter().filter(|v| v["storage"] == true).collect();
    if storage.len() != 1 && !versions.is_empty() {
        errors.push(FieldError::invalid(
            "spec.versions",
            "...",
            "must have exactly one version marked as storage version",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let served = versions
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| ResourceType {
            group: group.clone(),
            version: v["name"].as_str().unwrap_or_default().to_string(),
            plural: plural.clone(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.clone(),
            namespaced: scope == "Namespaced",
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource: v["subresources"]["status"].is_object(),
            status_on_create: false,
            generation: true,
            strategic_merge: false,
            printer_columns: Some(
                v["additionalPrinterColumns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| PrinterColumn {
                        name: c["name"].as_str().unwrap_or_default().into(),
                        type_: c["type"].as_str().unwrap_or("string").into(),
                        format: c["format"].as_str().unwrap_or_default().into(),
                        description: c["description"].as_str().unwrap_or_default().into(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
                    })
                    .collect(),
            ),
            schema: Some(v["schema"]["openAPIV3Schema"].clone()).filter(|s| !s.is_null()),
            conversion: super::conversion::Conversion::None,
        })
        .collect();
    let now = now_rfc3339();
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let mut accepted = names.clone();
    if accepted["listKind"].is_null() {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    if accepted["singular"].is_null() {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    crd["spec"]["names"] = accepted.clone();
    crd["status"] = json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": [storage[0]["name"]],
    });
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_serves_its_versions_with_printer_columns_and_is_established() {
        let mut crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]}]}
        });
        let served = prepare(&mut crd).unwrap();
        assert_eq!(served.len(), 1);
        assert!(served[0].status_subresource);
        assert_eq!(
            served[0].printer_columns.as_ref().unwrap()[0].json_path,
            ".spec.size"
        );
        assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    }

    #[test]
    fn crd_named_other_than_plural_dot_group_is_invalid() {
        let mut crd = json!({"metadata": {"name": "wrong"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
        let errors = prepare(&mut crd).unwrap_err();
        assert_eq!(errors[0].field, "metadata.name");
    }
}

/// What the API server does to a custom object with its structural schema before storing it:
/// drops fields the schema does not know (unless it preserves unknown fields) and fills in
/// `default`s of absent fields.
pub fn prune_and_default(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    walk(schema, object, "", &mut pruned);
    pruned
}

/// Prunes and defaults `value`; `pruned` collects the paths of dropped fields, which
/// `fieldValidation=Strict` turns into an error.
fn walk(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>) {
    let root = path.is_empty();
    let join = |name: &str| {
        if root {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true
                || schema["additionalProperties"].is_object()
                || schema["additionalProperties"] == true;
            if let Some(properties) = properties {
                if !preserve {
                    map.retain(|k, _| {
                        let known = properties.contains_key(k)
                            || (root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
                        if !known {
                            pruned.push(join(k));
                        }
                        known
                    });
                }
                for (name, property) in properties {
                    if !map.contains_key(name)
                        && let Some(default) = property.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                }
                for (name, child) in map.iter_mut() {
                    if root && name == "metadata" {
                        continue;
                    }
                    if let Some(property) = properties.get(name) {
                        walk(property, child, &join(name), pruned);
                    }
                }
            } else if let Some(additional) = schema["additionalProperties"].as_object() {
                let additional = Value::Object(additional.clone());
                for (name, child) in map.iter_mut() {
                    walk(&additional, child, &format!("{path}[{name}]"), pruned);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(&schema["items"], item, &format!("{path}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn unknown_fields_are_pruned_and_defaults_filled_in() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"autoAssign": {"type": "boolean", "default": true}, "addresses": {"type": "array", "items": {"type": "string"}}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        let mut object = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"addresses": ["1"], "bogus": 1}, "status": {"anything": 1}, "extra": true});
        let pruned = prune_and_default(&schema, &mut object);
        assert_eq!(pruned, ["extra", "spec.bogus"]);
        assert_eq!(
            object,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"addresses": ["1"], "autoAssign": true}, "status": {"anything": 1}})
        );
    }
}
