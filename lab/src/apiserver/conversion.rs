//! Kinds served in two shapes over one stored object. `events.k8s.io/v1` Events are core/v1
//! Events with renamed fields, as upstream converts them (`pkg/apis/events/v1/conversion.go`):
//! an Event a controller records through either API shows in `kubectl get events` and
//! `kubectl describe`, and in watches of both.

use serde_json::{Map, Value};

use super::resources::ResourceType;

/// How a kind's objects are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// Stored as served.
    None,
    /// `events.k8s.io/v1` Event, stored as a core/v1 Event.
    EventsV1,
}

/// (events.k8s.io/v1 name, core/v1 name) of every renamed field.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(object: &Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let pairs: Vec<(&str, &str)> = pairs.collect();
    let renamed: Map<String, Value> = map
        .iter()
        .map(|(k, v)| {
            let name = pairs
                .iter()
                .find(|(from, _)| from == k)
                .map_or(k.as_str(), |(_, to)| to);
            (name.to_string(), v.clone())
        })
        .collect();
    Value::Object(renamed)
}

/// The stored (core) shape of an object written through `rt`.
pub fn to_storage(rt: &ResourceType, object: &Value) -> Value {
    match rt.conversion {
        Conversion::None => object.clone(),
        Conversion::EventsV1 => {
            let mut core = rename(object, EVENT_FIELDS.iter().copied());
            core["apiVersion"] = Value::String("v1".into());
            core["kind"] = Value::String("Event".into());
            core
        }
    }
}

/// The served shape of a stored object.
pub fn from_storage(rt: &ResourceType, object: &Value) -> Value {
    match rt.conversion {
        Conversion::None => object.clone(),
        Conversion::EventsV1 => rename(object, EVENT_FIELDS.iter().map(|(v1, core)| (*core, *v1))),
    }
}

/// A field selector's field as it is named in the stored shape.
pub fn stored_field(rt: &ResourceType, field: &str) -> String {
    if rt.conversion == Conversion::EventsV1 {
        for (v1, core) in EVENT_FIELDS {
            if field == *v1 {
                return core.to_string();
            }
            if let Some(rest) = field.strip_prefix(v1).and_then(|r| r.strip_prefix('.')) {
                return format!("{core}.{rest}");
            }
        }
    }
    field.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_v1_fields_map_to_core_and_back() {
        let mut rt = crate::apiserver::resources::Registry::default()
            .find("events.k8s.io", "v1", "events")
            .unwrap()
            .as_ref()
            .clone();
        rt.conversion = Conversion::EventsV1;
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"name": "web"}, "reportingController": "portico.dev/controller", "reason": "EnsuredLoadBalancer"});
        let core = to_storage(&rt, &v1);
        assert_eq!(core["message"], "hi");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["reportingComponent"], "portico.dev/controller");
        assert_eq!(core["apiVersion"], "v1");
        let back = from_storage(&rt, &core);
        assert_eq!(back["note"], "hi");
        assert_eq!(stored_field(&rt, "regarding.name"), "involvedObject.name");
    }
}
