//! Events in both forms: core/v1 (what client-go's record package writes) and
//! events.k8s.io/v1 (the newer API); the server converts between them as for JSON.

use k8s_pb::api::core::v1 as core_v1;
use k8s_pb::api::events::v1 as events_v1;
use serde_json::{Value, json};

use super::core::object_reference;
use super::json::{Fields, micro_time, time};

pub fn core_event(event: &core_v1::Event) -> Value {
    let source = event.source.as_ref().map_or_else(
        || json!({}),
        |s| {
            Fields::new()
                .string("component", &s.component)
                .string("host", &s.host)
                .build()
        },
    );
    let series = event.series.as_ref().map(|s| {
        Fields::new()
            .int("count", s.count)
            .opt_value(
                "lastObservedTime",
                s.last_observed_time.as_ref().and_then(micro_time),
            )
            .build()
    });
    Fields::object("v1", "Event", event.metadata.as_ref())
        .value(
            "involvedObject",
            event
                .involved_object
                .as_ref()
                .map_or_else(|| json!({}), object_reference),
        )
        .string("reason", &event.reason)
        .string("message", &event.message)
        .value("source", source)
        .opt_value(
            "firstTimestamp",
            event.first_timestamp.as_ref().and_then(time),
        )
        .opt_value(
            "lastTimestamp",
            event.last_timestamp.as_ref().and_then(time),
        )
        .int("count", event.count)
        .string("type", &event.r#type)
        .opt_value("eventTime", event.event_time.as_ref().and_then(micro_time))
        .opt_value("series", series)
        .string("action", &event.action)
        .opt_value("related", event.related.as_ref().map(object_reference))
        .string("reportingComponent", &event.reporting_component)
        .string("reportingInstance", &event.reporting_instance)
        .build()
}

pub fn event(event: &events_v1::Event) -> Value {
    let series = event.series.as_ref().map(|s| {
        Fields::new()
            .value("count", json!(s.count.unwrap_or(0)))
            .opt_value(
                "lastObservedTime",
                s.last_observed_time.as_ref().and_then(micro_time),
            )
            .build()
    });
    let source = event.deprecated_source.as_ref().map(|s| {
        Fields::new()
            .string("component", &s.component)
            .string("host", &s.host)
            .build()
    });
    Fields::object("events.k8s.io/v1", "Event", event.metadata.as_ref())
        .opt_value("eventTime", event.event_time.as_ref().and_then(micro_time))
        .opt_value("series", series)
        .string("reportingController", &event.reporting_controller)
        .string("reportingInstance", &event.reporting_instance)
        .string("action", &event.action)
        .string("reason", &event.reason)
        .opt_value("regarding", event.regarding.as_ref().map(object_reference))
        .opt_value("related", event.related.as_ref().map(object_reference))
        .string("note", &event.note)
        .string("type", &event.r#type)
        .opt_value("deprecatedSource", source.filter(|s| s != &json!({})))
        .opt_value(
            "deprecatedFirstTimestamp",
            event.deprecated_first_timestamp.as_ref().and_then(time),
        )
        .opt_value(
            "deprecatedLastTimestamp",
            event.deprecated_last_timestamp.as_ref().and_then(time),
        )
        .int("deprecatedCount", event.deprecated_count)
        .build()
}
