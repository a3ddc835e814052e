//! Server-side apply and field ownership (`metadata.managedFields`, FieldsV1).
//!
//! Each manager owns a set of field paths. An apply sets the fields of its configuration,
//! takes ownership of them, fails with a conflict where another manager owns a field it would
//! change (unless `force`), and removes the fields it owned before but no longer applies when
//! nobody else owns them. Updates (PUT, PATCH, create) give their manager the fields they
//! changed. Lists merge by key as in strategic merge, or per the CRD's list-type markers.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::meta::now_rfc3339;
use super::patch::{ListKind, ListRules, key_value, strategic_merge};

/// Encoded segments: `f:name`, `k:{"port":80,"protocol":"TCP"}`, `v:"value"`.
type FieldPath = Vec<String>;
type FieldSet = BTreeSet<FieldPath>;

/// Metadata fields the server owns, never tracked for a manager.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Leaf paths of an object (list elements of keyed lists count as members too).
fn collect(
    value: &Value,
    rules: &ListRules,
    names: &mut Vec<String>,
    prefix: &mut FieldPath,
    out: &mut FieldSet,
) {
    let Some(map) = value.as_object() else {
        out.insert(prefix.clone());
        return;
    };
    if map.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (key, child) in map {
        if prefix.is_empty() && matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        if prefix.len() == 1 && prefix[0] == "f:metadata" && SYSTEM_METADATA.contains(&key.as_str())
        {
            continue;
        }
        names.push(key.clone());
        prefix.push(format!("f:{key}"));
        match child {
            Value::Array(items) => match rules.kind(names) {
                ListKind::Atomic => {
                    out.insert(prefix.clone());
                }
                ListKind::Set => {
                    for item in items {
                        prefix.push(format!("v:{item}"));
                        out.insert(prefix.clone());
                        prefix.pop();
                    }
                }
                ListKind::Map(keys) => {
                    names.push("[]".into());
                    for item in items {
                        let key_value: Map<String, Value> = keys
                            .iter()
                            .map(|k| (k.clone(), key_value(item, k)))
                            .collect();
                        prefix.push(format!("k:{}", Value::Object(key_value)));
                        out.insert(prefix.clone());
                        collect(item, rules, names, prefix, out);
                        prefix.pop();
                    }
                    names.pop();
                }
            },
            _ => collect(child, rules, names, prefix, out),
        }
        prefix.pop();
        names.pop();
    }
}

fn field_set(value: &Value, rules: &ListRules) -> FieldSet {
    let mut out = FieldSet::new();
    collect(value, rules, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn value_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = value;
    for seg in path {
        at = if let Some(field) = seg.strip_prefix("f:") {
            at.get(field)?
        } else if let Some(key) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            at.as_array()?
                .iter()
                .find(|item| key.iter().all(|(k, v)| key_value(item, k) == *v))?
        } else {
            let wanted: Value = serde_json::from_str(seg.strip_prefix("v:")?).ok()?;
            at.as_array()?.iter().find(|item| **item == wanted)?
        };
    }
    Some(at)
}

fn remove_at(value: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for seg in parent_path {
        let next = if let Some(field) = seg.strip_prefix("f:") {
            at.get_mut(field)
        } else if let Some(key) = seg.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) else {
                return;
            };
            at.as_array_mut().and_then(|items| {
                items
                    .iter_mut()
                    .find(|item| key.iter().all(|(k, v)| key_value(item, k) == *v))
            })
        } else {
            return;
        };
        match next {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = at.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(items) = at.as_array_mut() {
        if let Some(key) = last
            .strip_prefix("k:")
            .and_then(|k| serde_json::from_str::<Map<String, Value>>(k).ok())
        {
            items.retain(|item| !key.iter().all(|(k, v)| key_value(item, k) == *v));
        } else if let Some(wanted) = last
            .strip_prefix("v:")
            .and_then(|v| serde_json::from_str::<Value>(v).ok())
        {
            items.retain(|item| *item != wanted);
        }
    }
}

/// FieldsV1 JSON: nested `f:`/`k:`/`v:` keys, `.` marking a member that also has children.
fn encode(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for seg in path {
            node = node
                .entry(seg.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fields nodes are objects");
        }
        node.insert(".".into(), json!({}));
    }
    fn tidy(node: &mut Map<String, Value>) {
        for child in node.values_mut() {
            if let Some(child) = child.as_object_mut() {
                if child.len() == 1 && child.contains_key(".") {
                    child.clear();
                } else {
                    tidy(child);
                }
            }
        }
    }
    tidy(&mut root);
    Value::Object(root)
}

fn decode(fields: &Value) -> FieldSet {
    fn walk(node: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        let Some(map) = node.as_object() else { return };
        if map.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (key, child) in map {
            if key == "." {
                out.insert(prefix.clone());
                continue;
            }
            prefix.push(key.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry, decoded.
struct Manager {
    entry: Value,
    fields: FieldSet,
}

fn managers(object: &Value) -> Vec<Manager> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| Manager {
            fields: decode(&entry["fieldsV1"]),
            entry: entry.clone(),
        })
        .collect()
}

fn is(entry: &Value, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
    entry["manager"] == manager
        && entry["operation"] == operation
        && entry["subresource"].as_str() == subresource
}

fn store_managers(object: &mut Value, managers: Vec<Manager>) {
    let entries: Vec<Value> = managers
        .into_iter()
        .filter(|m| !m.fields.is_empty())
        .map(|mut m| {
            m.entry["fieldsV1"] = encode(&m.fields);
            m.entry
        })
        .collect();
    if entries.is_empty() {
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
    } else {
        object["metadata"]["managedFields"] = Value::Array(entries);
    }
}

/// Who is asking, and through which endpoint.
pub struct FieldOwner<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
}

impl FieldOwner<'_> {
    fn entry(&self, operation: &str) -> Value {
        let mut entry = json!({
            "manager": self.manager, "operation": operation, "apiVersion": self.api_version,
            "time": now_rfc3339(), "fieldsType": "FieldsV1",
        });
        if let Some(sub) = self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }
}

/// A field another manager owns and the apply would change.
#[derive(Debug, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

/// Renders a path as the apiserver's conflict messages do: `.spec.ports[port=80,protocol="TCP"]`.
fn render(path: &[String]) -> String {
    path.iter()
        .map(|seg| {
            if let Some(f) = seg.strip_prefix("f:") {
                format!(".{f}")
            } else if let Some(k) = seg.strip_prefix("k:") {
                let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                format!(
                    "[{}]",
                    key.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            } else {
                format!("[={}]", seg.trim_start_matches("v:"))
            }
        })
        .collect()
}

/// Server-side apply of `applied` onto `live` (None: the object is new).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    rules: &ListRules,
    owner: &FieldOwner,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let applied_fields = field_set(applied, rules);
    let Some(live) = live else {
        let mut created = applied.clone();
        let entry = owner.entry("Apply");
        store_managers(
            &mut created,
            vec![Manager {
                entry,
                fields: applied_fields,
            }],
        );
        return Ok(created);
    };
    let mut managers = managers(live);
    let mut conflicts = Vec::new();
    for m in managers
        .iter()
        .filter(|m| !is(&m.entry, owner.manager, "Apply", owner.subresource))
    {
        for path in m.fields.intersection(&applied_fields) {
            let (have, want) = (value_at(live, path), value_at(applied, path));
            let leaf = want.is_some_and(|w| !w.is_object());
            if leaf && have != want {
                conflicts.push(Conflict {
                    manager: m.entry["manager"].as_str().unwrap_or_default().into(),
                    field: render(path),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let previously_applied = managers
        .iter()
        .find(|m| is(&m.entry, owner.manager, "Apply", owner.subresource))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    // Forced: the other managers lose the fields this apply now sets.
    for m in managers
        .iter_mut()
        .filter(|m| !is(&m.entry, owner.manager, "Apply", owner.subresource))
    {
        m.fields.retain(|path| {
            !(applied_fields.contains(path)
                && value_at(live, path) != value_at(applied, path)
                && value_at(applied, path).is_some_and(|v| !v.is_object()))
        });
    }
    let mut merged = live.clone();
    let mut config = applied.clone();
    if let Some(meta) = config["metadata"].as_object_mut() {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    strategic_merge(&mut merged, &config, rules, &mut Vec::new());
    for path in previously_applied.difference(&applied_fields) {
        let owned_elsewhere = managers
            .iter()
            .filter(|m| !is(&m.entry, owner.manager, "Apply", owner.subresource))
            .any(|m| m.fields.iter().any(|p| p.starts_with(path)));
        if !owned_elsewhere {
            remove_at(&mut merged, path);
        }
    }
    managers.retain(|m| !is(&m.entry, owner.manager, "Apply", owner.subresource));
    managers.push(Manager {
        entry: owner.entry("Apply"),
        fields: applied_fields,
    });
    store_managers(&mut merged, managers);
    Ok(merged)
}

/// Gives the manager of a create, PUT or non-apply PATCH the fields it changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, rules: &ListRules, owner: &FieldOwner) {
    let old_empty = Value::Null;
    let old = old.unwrap_or(&old_empty);
    let mut managers = if old.is_null() {
        Vec::new()
    } else {
        managers(old)
    };
    let new_fields = field_set(new, rules);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| value_at(old, p) != value_at(new, p))
        .cloned()
        .collect();
    for m in managers.iter_mut() {
        m.fields
            .retain(|p| new_fields.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        match managers
            .iter_mut()
            .find(|m| is(&m.entry, owner.manager, "Update", owner.subresource))
        {
            Some(m) => {
                m.fields.extend(changed);
                m.entry["time"] = json!(now_rfc3339());
            }
            None => managers.push(Manager {
                entry: owner.entry("Update"),
                fields: changed,
            }),
        }
    }
    store_managers(new, managers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ListRules<'static> {
        ListRules {
            builtin: true,
            schema: None,
            apply: true,
        }
    }

    fn owner(manager: &str) -> FieldOwner<'_> {
        FieldOwner {
            manager,
            api_version: "v1",
            subresource: None,
        }
    }

    fn svc(port: u64, label: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"team": label}}, "spec": {"ports": [{"port": port, "protocol": "TCP"}]}})
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let set = field_set(&svc(80, "a"), &rules());
        let encoded = encode(&set);
        assert!(
            encoded["f:spec"]["f:ports"]["k:{\"port\":80,\"protocol\":\"TCP\"}"]["."].is_object()
        );
        assert_eq!(decode(&encoded), set);
    }

    #[test]
    fn applying_a_field_another_manager_set_differently_conflicts_unless_forced() {
        let live = apply(None, &svc(80, "a"), &rules(), &owner("alice"), false).unwrap();
        let conflicts =
            apply(Some(&live), &svc(80, "b"), &rules(), &owner("bob"), false).unwrap_err();
        assert_eq!(
            conflicts,
            vec![Conflict {
                manager: "alice".into(),
                field: ".metadata.labels.team".into()
            }]
        );
        let forced = apply(Some(&live), &svc(80, "b"), &rules(), &owner("bob"), true).unwrap();
        assert_eq!(forced["metadata"]["labels"]["team"], "b");
    }

    #[test]
    fn fields_dropped_from_a_managers_config_are_removed() {
        let live = apply(None, &svc(80, "a"), &rules(), &owner("alice"), false).unwrap();
        let mut smaller = svc(80, "a");
        smaller["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let after = apply(Some(&live), &smaller, &rules(), &owner("alice"), false).unwrap();
        assert!(after["metadata"]["labels"]["team"].is_null());
    }
}
