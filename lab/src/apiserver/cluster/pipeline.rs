//! The one pipeline every write goes through: the system metadata stays the server's, the
//! status subresource splits status from the rest, custom objects are pruned, defaulted and
//! validated against their schema, generation follows the spec, Services get their
//! allocations, CRDs register their kinds, and a write that changes nothing stores nothing (a
//! no-op keeps its resourceVersion, as upstream).

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::apply::{self, FieldOwner};
use super::super::meta::{self, is_dns_subdomain, now_rfc3339};
use super::super::patch::ListRules;
use super::super::resources::ResourceType;
use super::super::status::{ApiError, FieldError};
use super::super::{crd, pods, schema, typed, validation};
use super::State;
use super::delete::remove_locked;
use super::write::WriteContext;

fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> ApiError {
    ApiError::invalid(&rt.kind, &rt.group, name, errors)
}

pub(super) fn check_type(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    if let Some(api_version) = body["apiVersion"]
        .as_str()
        .filter(|v| *v != rt.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(kind) = body["kind"].as_str().filter(|k| *k != rt.kind) {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn validate_name(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    let dns_1035 = |n: &str| {
        n.len() <= 63
            && n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.ends_with('-')
    };
    let ok = if rt.is("", "services") {
        dns_1035(name)
    } else {
        is_dns_subdomain(name)
    };
    if ok {
        Vec::new()
    } else if rt.is("", "services") {
        vec![FieldError::invalid(
            "metadata.name",
            format!("{name:?}"),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        )]
    } else {
        vec![FieldError::invalid(
            "metadata.name",
            format!("{name:?}"),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )]
    }
}

/// What `generation` counts changes of: everything but metadata, and but status where status
/// has its own endpoint (without one, a status change is a change like any other).
fn spec_part(rt: &ResourceType, object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        for field in ["metadata", "apiVersion", "kind"] {
            map.remove(field);
        }
        if rt.status_subresource {
            map.remove("status");
        }
    }
    rest
}

fn without_volatile(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}

pub(super) fn finalizers(object: &Value) -> Vec<Value> {
    object["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(super) fn owner<'a>(
    ctx: &'a WriteContext,
    api_version: &'a str,
    sub: Option<&'a str>,
) -> FieldOwner<'a> {
    FieldOwner {
        manager: &ctx.manager,
        api_version,
        subresource: sub,
    }
}

pub(super) fn create_locked(
    state: &mut State,
    rt: &Arc<ResourceType>,
    namespace: Option<&str>,
    mut body: Value,
    ctx: &WriteContext,
    from_apply: bool,
) -> Result<Arc<Value>, ApiError> {
    check_type(rt, &body)?;
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    let meta = &mut body["metadata"];
    if rt.namespaced {
        let ns = namespace.unwrap_or_default();
        if meta["namespace"]
            .as_str()
            .is_some_and(|n| !n.is_empty() && n != ns)
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta["namespace"] = json!(ns);
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    if meta["name"].as_str().unwrap_or_default().is_empty() {
        match meta["generateName"].as_str() {
            Some(prefix) if !prefix.is_empty() => {
                meta["name"] = json!(format!("{prefix}{}", meta::name_suffix()))
            }
            _ => {
                return Err(invalid(
                    rt,
                    "",
                    &[FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
        }
    }
    let name = meta["name"].as_str().unwrap_or_default().to_string();
    let errors = validate_name(rt, &name);
    if !errors.is_empty() {
        return Err(invalid(rt, &name, &errors));
    }
    if let Some(ns) = namespace.filter(|_| rt.namespaced) {
        let namespaces = state
            .registry
            .find("", "v1", "namespaces")
            .expect("built in");
        match state.store.get(&namespaces.storage_key(), "", ns) {
            None => return Err(ApiError::namespace_not_found(ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.group_resource()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if rt.printer_columns.is_some() && super::delete::crd_terminating(state, rt) {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "create not allowed while custom resource definition is terminating",
        ));
    }
    let gr = rt.storage_key();
    if state
        .store
        .get(&gr, namespace.unwrap_or_default(), &name)
        .is_some()
    {
        return Err(ApiError::already_exists(rt, &name));
    }
    let meta = body["metadata"]
        .as_object_mut()
        .expect("made an object above");
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if !from_apply {
        meta.remove("managedFields");
    }
    meta.insert("uid".into(), json!(meta::new_uid()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    if rt.generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    body["apiVersion"] = json!(rt.api_version());
    body["kind"] = json!(rt.kind);
    if rt.status_subresource
        && !rt.status_on_create
        && let Some(map) = body.as_object_mut()
    {
        map.remove("status");
    }
    // Checked before any allocation, which a failed write must not leave behind.
    let errors = validation::validate(rt, &body);
    if !errors.is_empty() {
        return Err(invalid(rt, &name, &errors));
    }
    let mut registers = None;
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => {
            body["status"] = json!({"loadBalancer": {}});
            state
                .services
                .prepare(None, &mut body)
                .map_err(|errors| invalid(rt, &name, &errors))?;
        }
        ("", "pods") => pods::apply_defaults(&mut body),
        ("", "namespaces") => {
            body["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            body["spec"] = json!({"finalizers": ["kubernetes"]});
            body["status"] = json!({"phase": "Active"});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            registers =
                Some(crd::prepare(&mut body).map_err(|errors| invalid(rt, &name, &errors))?);
        }
        _ => {}
    }
    if let Some(schema) = rt.schema.as_ref().filter(|_| rt.printer_columns.is_some()) {
        let pruned = crd::prune_and_default(schema, &mut body);
        super::decode::unknown_fields(rt, ctx, &pruned)?;
        let errors = schema::validate(schema, &body, None);
        if !errors.is_empty() {
            return Err(invalid(rt, &name, &errors));
        }
    }
    if !from_apply {
        let api_version = rt.api_version();
        apply::record_update(
            None,
            &mut body,
            &ListRules::for_type(rt, true),
            &owner(ctx, &api_version, None),
        );
    }
    typed::add_go_zero_fields(rt, &mut body);
    if let Some(served) = registers {
        register(state, &body, served);
    }
    Ok(state.store.put(&gr, body))
}

fn register(state: &mut State, crd: &Value, served: Vec<ResourceType>) {
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
    state.registry.set_custom(group, plural, served);
}

pub(super) fn update_locked(
    state: &mut State,
    rt: &Arc<ResourceType>,
    old: &Arc<Value>,
    mut new: Value,
    sub: Option<&str>,
    ctx: &WriteContext,
    from_apply: bool,
) -> Result<Arc<Value>, ApiError> {
    let name = old["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check_type(rt, &new)?;
    if let Some(rv) = new["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(rt, &name));
    }
    if sub == Some("status") {
        // The status endpoint changes status and nothing else.
        let status = new["status"].take();
        let managed = new["metadata"]["managedFields"].take();
        new = (**old).clone();
        new["status"] = status;
        if from_apply {
            new["metadata"]["managedFields"] = managed;
        }
    } else if rt.status_subresource {
        new["status"] = old["status"].clone();
        if new["status"].is_null()
            && let Some(map) = new.as_object_mut()
        {
            map.remove("status");
        }
    }
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    new["apiVersion"] = json!(rt.api_version());
    new["kind"] = json!(rt.kind);
    if !old["metadata"]["deletionTimestamp"].is_null() {
        let before = finalizers(old);
        if finalizers(&new).iter().any(|f| !before.contains(f)) {
            return Err(invalid(
                rt,
                &name,
                &[FieldError::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                )],
            ));
        }
    }
    // Checked before any allocation, which a failed write must not leave behind.
    let errors = validation::validate(rt, &new);
    if !errors.is_empty() {
        return Err(invalid(rt, &name, &errors));
    }
    let mut registers = None;
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => {
            // Validate against a scratch allocator state first would double the work; prepare
            // is all-or-nothing, so it is safe to run on the real one.
            state
                .services
                .prepare(Some(old), &mut new)
                .map_err(|errors| invalid(rt, &name, &errors))?;
        }
        ("", "pods") => pods::apply_defaults(&mut new),
        ("apiextensions.k8s.io", "customresourcedefinitions") if sub.is_none() => {
            registers = Some(crd::prepare(&mut new).map_err(|errors| invalid(rt, &name, &errors))?);
        }
        _ => {}
    }
    if let Some(schema) = rt.schema.as_ref().filter(|_| rt.printer_columns.is_some()) {
        let pruned = crd::prune_and_default(schema, &mut new);
        super::decode::unknown_fields(rt, ctx, &pruned)?;
        let errors = schema::validate(schema, &new, Some(old));
        if !errors.is_empty() {
            return Err(invalid(rt, &name, &errors));
        }
    }
    if rt.generation && spec_part(rt, &new) != spec_part(rt, old) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = json!(generation);
    }
    if !from_apply {
        let api_version = rt.api_version();
        apply::record_update(
            Some(old),
            &mut new,
            &ListRules::for_type(rt, true),
            &owner(ctx, &api_version, sub),
        );
    }
    typed::add_go_zero_fields(rt, &mut new);
    if let Some(served) = registers {
        register(state, &new, served);
    }
    if without_volatile(&new) == without_volatile(old) {
        return Ok(old.clone());
    }
    if !new["metadata"]["deletionTimestamp"].is_null() && finalizers(&new).is_empty() {
        let stored = state.store.put(&rt.storage_key(), new);
        return Ok(remove_locked(state, rt, &stored));
    }
    Ok(state.store.put(&rt.storage_key(), new))
}
