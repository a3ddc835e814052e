//! OpenAPI v3: a root listing one document per group-version, each with the PATCH operations
//! kubectl looks for to learn that the server validates fields itself (`fieldValidation`), so
//! `kubectl apply` works without `--validate=false`, and the schemas of its kinds, tagged with
//! their group, version and kind as `kubectl explain` finds them: the built-in kinds' from
//! k8s-openapi (generated from the upstream OpenAPI, with its descriptions), custom kinds' from
//! their CRD.

use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::resources::{Registry, ResourceType};
use super::typed::{self, WithType};

/// A built-in kind's schema and those it refers to, keyed by their OpenAPI names.
struct Schemas;

impl WithType for Schemas {
    type Output = (String, Map<String, Value>);
    fn with<T>(self) -> Self::Output
    where
        T: DeserializeOwned + Serialize + JsonSchema,
    {
        let mut generator = SchemaSettings::openapi3().into_generator();
        generator.subschema_for::<T>();
        (
            T::schema_name().into_owned(),
            generator.take_definitions(true),
        )
    }
}

/// The schemas of one kind, its own tagged with its group, version and kind.
fn kind_schemas(rt: &ResourceType) -> Map<String, Value> {
    let (name, mut schemas) = match typed::with_type(rt, Schemas) {
        Some(found) => found,
        None => match rt.schema.as_ref().filter(|_| rt.printer_columns.is_some()) {
            Some(schema) => {
                let reversed: Vec<&str> = rt.group.split('.').rev().collect();
                let name = format!("{}.{}.{}", reversed.join("."), rt.version, rt.kind);
                let mut schemas = Map::new();
                schemas.insert(name.clone(), schema.clone());
                (name, schemas)
            }
            None => return Map::new(),
        },
    };
    if let Some(own) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
        own.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]),
        );
    }
    schemas
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut gvs: Vec<(String, String)> = Vec::new();
    for rt in registry.all() {
        let gv = (rt.group.clone(), rt.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    gvs
}

pub fn root(registry: &Registry, generation: u64) -> Value {
    let paths: Map<String, Value> = group_versions(registry)
        .into_iter()
        .map(|(g, v)| {
            let path = gv_path(&g, &v);
            let url = format!("/openapi/v3/{path}?hash={generation:016X}");
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

pub fn group_version(registry: &Registry, path: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut found = false;
    for rt in registry.all() {
        if gv_path(&rt.group, &rt.version) != path {
            continue;
        }
        found = true;
        let base = if rt.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("/{path}/{}/{{name}}", rt.plural)
        };
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let operation = json!({
            "operationId": format!("patch{}", rt.kind),
            "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        });
        paths.insert(base, json!({"patch": operation}));
        schemas.extend(kind_schemas(rt));
    }
    found.then(|| {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        })
    })
}
