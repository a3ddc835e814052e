//! A minimal OpenAPI v3: a root listing one document per group-version, each with the PATCH
//! operations kubectl looks for to learn that the server validates fields itself
//! (`fieldValidation`), so `kubectl apply` works without `--validate=false`. There are no
//! schemas; kubectl then builds patches from its compiled-in types (strategic merge for
//! built-in kinds) or as JSON merge patches (custom kinds), as it does for any unknown type.

use serde_json::{Map, Value, json};

use super::resources::Registry;

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
    }
    found.then(|| {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths,
            "components": {"schemas": {}},
        })
    })
}
