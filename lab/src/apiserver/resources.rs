//! The kinds the server knows: the built-in ones Portico and kubectl touch, and every kind a
//! CustomResourceDefinition adds while it exists. Discovery, routing and the per-kind rules
//! (status subresource, generation, printer columns) all read from here.

use std::sync::Arc;

use serde_json::Value;

use super::conversion::Conversion;

/// A printer column as a CRD's `additionalPrinterColumns` declares it.
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Serves `/status`; the main endpoint then ignores status, and creates drop it.
    pub status_subresource: bool,
    /// Whether a create may set status (Nodes and Pods may; Services and custom kinds may not).
    pub status_on_create: bool,
    /// Whether `metadata.generation` tracks spec changes for this kind.
    pub generation: bool,
    /// Built-in kinds take strategic merge patches; custom kinds answer 415, as upstream.
    pub strategic_merge: bool,
    /// Set for kinds a CRD serves: its printer columns (empty means the default `Age`).
    pub printer_columns: Option<Vec<PrinterColumn>>,
    /// The CRD's structural schema for this version, for list semantics in server-side apply.
    pub schema: Option<Value>,
    /// Whether objects are stored in another kind's shape.
    pub conversion: Conversion,
}

impl ResourceType {
    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        short: &[&str],
    ) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: Vec::new(),
            status_subresource: false,
            status_on_create: true,
            generation: false,
            strategic_merge: true,
            printer_columns: None,
            schema: None,
            conversion: Conversion::None,
        }
    }

    fn with_status(mut self, on_create: bool) -> Self {
        self.status_subresource = true;
        self.status_on_create = on_create;
        self
    }

    fn with_generation(mut self) -> Self {
        self.generation = true;
        self
    }

    fn in_category(mut self, category: &str) -> Self {
        self.categories.push(category.into());
        self
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `services` or `leases.coordination.k8s.io`, as error messages name a resource.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The storage identity: one object is shared by every version of its group and resource
    /// (and, for converted kinds, with the kind it is stored as).
    pub fn storage_key(&self) -> GroupResource {
        match self.conversion {
            Conversion::None => GroupResource(Arc::from(self.group_resource())),
            Conversion::EventsV1 => GroupResource(Arc::from("events")),
        }
    }

    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }
}

/// `plural.group`: the key objects are stored under, whatever version they were written with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource(pub Arc<str>);

/// Every kind currently served. Built-ins are fixed; CRDs add and remove theirs.
#[derive(Clone, Debug)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        let b = ResourceType::builtin;
        let types = vec![
            b("", "v1", "namespaces", "Namespace", false, &["ns"]).with_status(true),
            b("", "v1", "nodes", "Node", false, &["no"]).with_status(true),
            b("", "v1", "services", "Service", true, &["svc"])
                .with_status(false)
                .in_category("all"),
            b("", "v1", "pods", "Pod", true, &["po"])
                .with_status(true)
                .in_category("all"),
            b("", "v1", "events", "Event", true, &["ev"]),
            b("", "v1", "endpoints", "Endpoints", true, &["ep"]),
            b("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
            b("", "v1", "secrets", "Secret", true, &[]),
            b("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
            b("apps", "v1", "deployments", "Deployment", true, &["deploy"])
                .with_status(false)
                .with_generation()
                .in_category("all"),
            b("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"])
                .with_status(false)
                .with_generation()
                .in_category("all"),
            // EndpointSlices count changes to everything but metadata in `generation`.
            b(
                "discovery.k8s.io",
                "v1",
                "endpointslices",
                "EndpointSlice",
                true,
                &[],
            )
            .with_generation(),
            b("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
            ResourceType {
                conversion: Conversion::EventsV1,
                ..b("events.k8s.io", "v1", "events", "Event", true, &["ev"])
            },
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterroles",
                "ClusterRole",
                false,
                &[],
            ),
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                "ClusterRoleBinding",
                false,
                &[],
            ),
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "roles",
                "Role",
                true,
                &[],
            ),
            b(
                "rbac.authorization.k8s.io",
                "v1",
                "rolebindings",
                "RoleBinding",
                true,
                &[],
            ),
            b(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                &["crd", "crds"],
            )
            .with_status(false)
            .with_generation(),
        ];
        Registry {
            types: types.into_iter().map(Arc::new).collect(),
        }
    }
}

impl Registry {
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }

    /// Groups in registration order, each with its versions (the first listed is preferred).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) if !versions.contains(&t.version) => {
                    versions.push(t.version.clone())
                }
                Some(_) => {}
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        groups
    }

    /// Replaces every version a CRD serves for `group`/`plural` (an empty `served` removes it).
    pub fn set_custom(&mut self, group: &str, plural: &str, served: Vec<ResourceType>) {
        self.types
            .retain(|t| !(t.group == group && t.plural == plural && t.printer_columns.is_some()));
        self.types.extend(served.into_iter().map(Arc::new));
    }
}
