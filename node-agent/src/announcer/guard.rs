//! Portico's own CRDs are watched through `DeserializeGuard`: one object the type cannot read
//! (written by hand, or before a schema change) is logged and skipped instead of failing the
//! whole list, which would leave the announcer without any `L2Announcement` or pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use portico_api::L2Announcement;
use portico_api::keys::reason::INVALID_L2_ANNOUNCEMENT;

/// The objects of a guarded store that could be read, and those that could not.
pub fn split<K>(store: &Store<DeserializeGuard<K>>) -> (Vec<Arc<K>>, Vec<InvalidObject>)
where
    K: Resource<DynamicType = ()> + Clone,
    DeserializeGuard<K>: Resource<DynamicType = ()> + Clone,
{
    let mut readable = Vec::new();
    let mut unreadable = Vec::new();
    for guarded in store.state() {
        match &guarded.0 {
            Ok(object) => readable.push(Arc::new(object.clone())),
            Err(invalid) => unreadable.push(invalid.clone()),
        }
    }
    (readable, unreadable)
}

/// Remembers which unreadable objects were reported, by name and resourceVersion, so that each
/// version is reported once (not at every pass) and again after it is edited.
#[derive(Default)]
pub struct Reported {
    versions: BTreeMap<String, String>,
}

impl Reported {
    /// The unreadable objects not reported yet in this version; forgets the fixed ones.
    pub fn due<'a>(&mut self, unreadable: &'a [InvalidObject]) -> Vec<&'a InvalidObject> {
        self.versions.retain(|name, _| {
            unreadable
                .iter()
                .any(|o| o.metadata.name.as_ref() == Some(name))
        });
        unreadable
            .iter()
            .filter(|invalid| {
                let name = invalid.metadata.name.clone().unwrap_or_default();
                let version = invalid
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default();
                self.versions.insert(name, version.clone()) != Some(version)
            })
            .collect()
    }
}

/// Logs each unreadable `L2Announcement` (every node), and the reporter raises a Warning Event
/// on it naming the error, so `kubectl describe l2a` shows why it has no effect.
pub async fn report_unreadable_announcements(
    due: &[&InvalidObject],
    reporter: bool,
    recorder: &Recorder,
) {
    for invalid in due {
        let name = invalid.metadata.name.clone().unwrap_or_default();
        tracing::warn!(l2announcement = %name, error = %invalid.error,
            "cannot read L2Announcement; announcing as if it did not exist");
        if !reporter {
            continue;
        }
        let reference = ObjectReference {
            api_version: Some(L2Announcement::api_version(&()).into_owned()),
            kind: Some(L2Announcement::kind(&()).into_owned()),
            name: Some(name),
            uid: invalid.metadata.uid.clone(),
            resource_version: invalid.metadata.resource_version.clone(),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: INVALID_L2_ANNOUNCEMENT.into(),
            note: Some(format!(
                "cannot read this L2Announcement ({}); it covers nothing until it is fixed",
                invalid.error
            )),
            action: "Validate".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "could not publish an Event");
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;

    use super::*;

    fn invalid(name: &str, version: &str) -> InvalidObject {
        InvalidObject {
            error: "spec.interfaces: invalid type".into(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(version.into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn each_unreadable_version_is_reported_once() {
        let mut reported = Reported::default();
        let bad = [invalid("a", "1"), invalid("b", "5")];
        assert_eq!(reported.due(&bad).len(), 2);
        assert!(reported.due(&bad).is_empty(), "already reported");
        let edited = [invalid("a", "2"), invalid("b", "5")];
        let due = reported.due(&edited);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].metadata.name.as_deref(), Some("a"));
        // Fixed, then broken again: reported again.
        assert!(reported.due(&[]).is_empty());
        assert_eq!(reported.due(&edited).len(), 2);
    }
}
