//! Building JSON from decoded protobuf messages with Go's JSON rules.
//!
//! Go's protobuf encoder writes every non-pointer scalar, zero or not, while its JSON encoder
//! leaves out the zero values of `omitempty` fields. So a zero that arrives for a plain field
//! (`Fields::string`, `int`, `bool`) is left out, and a pointer field (`Fields::opt_*`) is kept
//! whenever it arrived, because there presence is the meaning (`ready: false`).

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::jiff::Timestamp;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, MicroTime, ObjectMeta, OwnerReference, Time,
};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

/// The seconds Go's zero `time.Time` (year 1) has since the Unix epoch.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// A JSON object under construction; each method applies one of Go's omission rules.
#[derive(Default)]
pub struct Fields(Map<String, Value>);

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    /// The `apiVersion`, `kind` and `metadata` every object starts with.
    pub fn object(api_version: &str, kind: &str, metadata: Option<&ObjectMeta>) -> Self {
        Fields::new()
            .value("apiVersion", json!(api_version))
            .value("kind", json!(kind))
            .value("metadata", object_meta(metadata))
    }

    /// A field that is always written (structs, required fields).
    pub fn value(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    /// An `omitempty` string: left out when empty.
    pub fn string(self, key: &str, value: &Option<String>) -> Self {
        match value.as_deref() {
            Some(s) if !s.is_empty() => self.value(key, json!(s)),
            _ => self,
        }
    }

    /// An `omitempty` integer: left out when zero.
    pub fn int(self, key: &str, value: Option<impl Into<i64>>) -> Self {
        match value.map(Into::into) {
            Some(n) if n != 0 => self.value(key, json!(n)),
            _ => self,
        }
    }

    /// An `omitempty` bool: left out when false.
    pub fn bool(self, key: &str, value: Option<bool>) -> Self {
        match value {
            Some(true) => self.value(key, json!(true)),
            _ => self,
        }
    }

    /// A pointer string: kept whenever it was sent.
    pub fn opt_string(self, key: &str, value: &Option<String>) -> Self {
        match value {
            Some(s) => self.value(key, json!(s)),
            None => self,
        }
    }

    /// A pointer integer: kept whenever it was sent, zero included.
    pub fn opt_int(self, key: &str, value: Option<impl Into<i64>>) -> Self {
        match value.map(Into::into) {
            Some(n) => self.value(key, json!(n)),
            None => self,
        }
    }

    /// A pointer bool: kept whenever it was sent, false included.
    pub fn opt_bool(self, key: &str, value: Option<bool>) -> Self {
        match value {
            Some(b) => self.value(key, json!(b)),
            None => self,
        }
    }

    /// A nested struct sent only when set (a pointer, or one mapped to `None` when empty).
    pub fn opt_value(self, key: &str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.value(key, v),
            None => self,
        }
    }

    /// An `omitempty` list of strings.
    pub fn strings(self, key: &str, values: &[String]) -> Self {
        self.list(key, values.iter().map(|s| json!(s)).collect())
    }

    /// An `omitempty` list.
    pub fn list(self, key: &str, values: Vec<Value>) -> Self {
        if values.is_empty() {
            self
        } else {
            self.value(key, Value::Array(values))
        }
    }

    /// An `omitempty` map of strings.
    pub fn map(self, key: &str, values: &BTreeMap<String, String>) -> Self {
        if values.is_empty() {
            self
        } else {
            self.value(key, json!(values))
        }
    }

    /// An `omitempty` map of bytes, base64-encoded as Go's JSON encoder writes `[]byte`.
    pub fn bytes_map(self, key: &str, values: &BTreeMap<String, Vec<u8>>) -> Self {
        let engine = base64::engine::general_purpose::STANDARD;
        let encoded: BTreeMap<&String, String> =
            values.iter().map(|(k, v)| (k, engine.encode(v))).collect();
        if encoded.is_empty() {
            self
        } else {
            self.value(key, json!(encoded))
        }
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// `metav1.ObjectMeta`; timestamps and managedFields a client sends are the server's to set,
/// but are carried over as JSON would carry them.
pub fn object_meta(meta: Option<&ObjectMeta>) -> Value {
    let Some(meta) = meta else {
        return json!({});
    };
    Fields::new()
        .string("name", &meta.name)
        .string("generateName", &meta.generate_name)
        .string("namespace", &meta.namespace)
        .string("selfLink", &meta.self_link)
        .string("uid", &meta.uid)
        .string("resourceVersion", &meta.resource_version)
        .int("generation", meta.generation)
        .opt_value(
            "creationTimestamp",
            meta.creation_timestamp.as_ref().and_then(time),
        )
        .opt_value(
            "deletionTimestamp",
            meta.deletion_timestamp.as_ref().and_then(time),
        )
        .opt_int(
            "deletionGracePeriodSeconds",
            meta.deletion_grace_period_seconds,
        )
        .map("labels", &meta.labels)
        .map("annotations", &meta.annotations)
        .list(
            "ownerReferences",
            meta.owner_references.iter().map(owner_reference).collect(),
        )
        .strings("finalizers", &meta.finalizers)
        .build()
}

fn owner_reference(owner: &OwnerReference) -> Value {
    Fields::new()
        .value(
            "apiVersion",
            json!(owner.api_version.as_deref().unwrap_or("")),
        )
        .value("kind", json!(owner.kind.as_deref().unwrap_or("")))
        .value("name", json!(owner.name.as_deref().unwrap_or("")))
        .value("uid", json!(owner.uid.as_deref().unwrap_or("")))
        .opt_bool("controller", owner.controller)
        .opt_bool("blockOwnerDeletion", owner.block_owner_deletion)
        .build()
}

fn timestamp(seconds: Option<i64>, nanos: Option<i32>) -> Option<Timestamp> {
    let seconds = seconds.unwrap_or(0);
    let nanos = nanos.unwrap_or(0);
    // Go sends its zero time as an empty message (or as year 1); JSON writes it as null.
    if (seconds == 0 && nanos == 0) || seconds == GO_ZERO_TIME_SECONDS {
        return None;
    }
    Timestamp::new(seconds, nanos).ok()
}

/// `metav1.Time`: RFC 3339 at second precision; the zero time is left out.
pub fn time(value: &Time) -> Option<Value> {
    let ts = timestamp(value.seconds, value.nanos)?;
    Some(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

/// `metav1.MicroTime`: RFC 3339 with six fractional digits; the zero time is left out.
pub fn micro_time(value: &MicroTime) -> Option<Value> {
    let ts = timestamp(value.seconds, value.nanos)?;
    let micros = ts.subsec_nanosecond() / 1000;
    Some(json!(format!(
        "{}.{micros:06}Z",
        ts.strftime("%Y-%m-%dT%H:%M:%S")
    )))
}

/// `intstr.IntOrString`: a number or a string by its type; the zero value is left out.
pub fn int_or_string(value: &IntOrString) -> Option<Value> {
    match value.r#type {
        Some(1) => value
            .str_val
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| json!(s)),
        _ => value.int_val.filter(|n| *n != 0).map(|n| json!(n)),
    }
}

/// A `ResourceList`: quantities in their canonical string form.
pub fn quantities(values: &BTreeMap<String, Quantity>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, q)| (k.clone(), q.string.clone().unwrap_or_default()))
        .collect()
}

/// `metav1.LabelSelector`.
pub fn label_selector(selector: &LabelSelector) -> Value {
    Fields::new()
        .map("matchLabels", &selector.match_labels)
        .list(
            "matchExpressions",
            selector
                .match_expressions
                .iter()
                .map(|r| {
                    Fields::new()
                        .value("key", json!(r.key.as_deref().unwrap_or("")))
                        .value("operator", json!(r.operator.as_deref().unwrap_or("")))
                        .strings("values", &r.values)
                        .build()
                })
                .collect(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_of_plain_fields_are_left_out_and_pointers_kept() {
        let object = Fields::new()
            .string("empty", &Some(String::new()))
            .string("name", &Some("web".into()))
            .int("zero", Some(0))
            .bool("no", Some(false))
            .opt_bool("ready", Some(false))
            .opt_int("replicas", Some(0))
            .opt_string("class", &None)
            .strings("none", &[])
            .build();
        assert_eq!(
            object,
            json!({"name": "web", "ready": false, "replicas": 0})
        );
    }

    #[test]
    fn go_zero_time_is_left_out_and_others_print_as_rfc3339() {
        assert_eq!(time(&Time::default()), None);
        let zero = Time {
            seconds: Some(GO_ZERO_TIME_SECONDS),
            nanos: Some(0),
        };
        assert_eq!(time(&zero), None);
        let set = Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        };
        assert_eq!(time(&set), Some(json!("2023-11-14T22:13:20Z")));
        let micro = MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_789),
        };
        assert_eq!(
            micro_time(&micro),
            Some(json!("2023-11-14T22:13:20.123456Z"))
        );
    }

    #[test]
    fn int_or_string_follows_its_type() {
        let number = IntOrString {
            r#type: Some(0),
            int_val: Some(8080),
            str_val: Some(String::new()),
        };
        let name = IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: Some("http".into()),
        };
        assert_eq!(int_or_string(&number), Some(json!(8080)));
        assert_eq!(int_or_string(&name), Some(json!("http")));
        assert_eq!(int_or_string(&IntOrString::default()), None);
    }
}
