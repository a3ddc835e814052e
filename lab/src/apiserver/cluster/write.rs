//! The write verbs: create, update (PUT), patch (every kind, apply included), delete with
//! finalizers. One pipeline takes every write: the system metadata stays the server's, the
//! status subresource splits status from the rest, generation follows the spec, Services get
//! their allocations, CRDs register their kinds, and a write that changes nothing stores
//! nothing (a no-op keeps its resourceVersion, as upstream).

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::apply::{self, FieldOwner};
use super::super::{crd, schema};
use super::super::meta::{self, is_dns_subdomain, now_rfc3339};
use super::super::patch::{self, ListRules};
use super::super::resources::ResourceType;
use super::super::status::{ApiError, FieldError};
use super::{Cluster, State, present};

/// One object, or its status, as a request path names it.
#[derive(Clone, Copy)]
pub struct ObjectRef<'a> {
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub subresource: Option<&'a str>,
}

/// Who writes, as `managedFields` records it.
pub struct WriteContext {
    pub manager: String,
    pub force: bool,
}

impl WriteContext {
    pub fn system() -> Self {
        WriteContext { manager: "kube-apiserver".into(), force: false }
    }
}

/// The preconditions of a DELETE body.
#[derive(Default)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    pub fn from_body(body: &Value) -> Self {
        let pre = &body["preconditions"];
        DeleteOptions {
            uid: pre["uid"].as_str().map(String::from),
            resource_version: pre["resourceVersion"].as_str().map(String::from),
        }
    }
}

fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> ApiError {
    ApiError::invalid(&rt.kind, &rt.group, name, errors)
}

fn check_type(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    if let Some(api_version) = body["apiVersion"].as_str().filter(|v| *v != rt.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(kind) = body["kind"].as_str().filter(|k| *k != rt.kind) {
        return Err(ApiError::bad_request(format!("the kind in the data ({kind}) does not match the expected kind ({})", rt.kind)));
    }
    Ok(())
}

fn validate_name(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    let dns_1035 = |n: &str| {
        n.len() <= 63
            && n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.ends_with('-')
    };
    let ok = if rt.is("", "services") { dns_1035(name) } else { is_dns_subdomain(name) };
    if ok {
        Vec::new()
    } else if rt.is("", "services") {
        vec![FieldError::invalid("metadata.name", format!("{name:?}"), "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character")]
    } else {
        vec![FieldError::invalid("metadata.name", format!("{name:?}"), "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")]
    }
}

/// Everything but metadata and status: what `generation` counts changes of.
fn spec_part(object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        for field in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(field);
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

fn finalizers(object: &Value) -> Vec<Value> {
    object["metadata"]["finalizers"].as_array().cloned().unwrap_or_default()
}

fn owner<'a>(ctx: &'a WriteContext, rt: &'a ResourceType, api_version: &'a str, sub: Option<&'a str>) -> FieldOwner<'a> {
    let _ = rt;
    FieldOwner { manager: &ctx.manager, api_version, subresource: sub }
}

impl Cluster {
    pub fn create(&self, rt: &Arc<ResourceType>, namespace: Option<&str>, body: Value, ctx: &WriteContext) -> Result<Value, ApiError> {
        check_type(rt, &body)?;
        let mut state = self.lock();
        let (stored_rt, body) = stored_view(&state, rt, body);
        let created = create_locked(&mut state, &stored_rt, namespace, body, ctx, false)?;
        Ok(present(rt, &created))
    }

    pub fn update(&self, rt: &Arc<ResourceType>, target: &ObjectRef, body: Value, ctx: &WriteContext) -> Result<Value, ApiError> {
        let ObjectRef { namespace, name, subresource: sub } = *target;
        check_type(rt, &body)?;
        if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        let mut state = self.lock();
        let old = state.store.get(&rt.storage_key(), namespace.unwrap_or_default(), name).ok_or_else(|| ApiError::not_found(rt, name))?;
        let (stored_rt, body) = stored_view(&state, rt, body);
        let updated = update_locked(&mut state, &stored_rt, &old, body, sub, ctx, false)?;
        Ok(present(rt, &updated))
    }

    /// Returns the object and whether the patch created it (an apply may).
    pub fn patch(&self, rt: &Arc<ResourceType>, target: &ObjectRef, content_type: &str, body: &[u8], ctx: &WriteContext) -> Result<(Value, bool), ApiError> {
        let ObjectRef { namespace, name, subresource: sub } = *target;
        let mut state = self.lock();
        let old = state.store.get(&rt.storage_key(), namespace.unwrap_or_default(), name);
        if content_type != patch::APPLY_PATCH {
            let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
            let patched = patch::patch_object(content_type, rt, &present(rt, &old), body)?;
            let (stored_rt, patched) = stored_view(&state, rt, patched);
            let updated = update_locked(&mut state, &stored_rt, &old, patched, sub, ctx, false)?;
            return Ok((present(rt, &updated), false));
        }
        if ctx.manager.is_empty() {
            return Err(ApiError::new(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
        }
        let applied: Value = serde_yaml_ng::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        check_type(rt, &applied)?;
        if applied["metadata"]["name"].as_str().is_some_and(|n| n != name) {
            return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
        }
        let api_version = rt.api_version();
        let rules = ListRules::for_type(rt, true);
        let owner = owner(ctx, rt, &api_version, sub);
        let live = old.as_deref().map(|o| present(rt, o));
        let result = apply::apply(live.as_ref(), &applied, &rules, &owner, ctx.force).map_err(|conflicts| {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            let listed: Vec<String> = conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect();
            let noun = if conflicts.len() == 1 { "conflict" } else { "conflicts" };
            ApiError {
                details: Some(json!({"causes": causes})),
                ..ApiError::new(409, "Conflict", format!("Apply failed with {} {noun}: {}", conflicts.len(), listed.join("\n")))
            }
        })?;
        let (stored_rt, result) = stored_view(&state, rt, result);
        match old {
            None => {
                let mut applied = result;
                if applied["metadata"]["name"].is_null() {
                    applied["metadata"]["name"] = json!(name);
                }
                let created = create_locked(&mut state, &stored_rt, namespace, applied, ctx, true)?;
                Ok((present(rt, &created), true))
            }
            Some(old) => {
                let updated = update_locked(&mut state, &stored_rt, &old, result, sub, ctx, true)?;
                Ok((present(rt, &updated), false))
            }
        }
    }

    /// Deletes at once, or, with finalizers, marks the object deleted and keeps it until they
    /// are gone. Returns the object while it stays, a success Status once it is gone.
    pub fn delete(&self, rt: &Arc<ResourceType>, namespace: Option<&str>, name: &str, options: &DeleteOptions) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let gr = rt.storage_key();
        let old = state.store.get(&gr, namespace.unwrap_or_default(), name).ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(uid) = &options.uid
            && old["metadata"]["uid"].as_str() != Some(uid)
        {
            let why = format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", old["metadata"]["uid"].as_str().unwrap_or_default());
            return Err(ApiError::precondition_failed(rt, name, &why));
        }
        if let Some(rv) = &options.resource_version
            && old["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old["metadata"]["resourceVersion"].as_str().unwrap_or_default()
            );
            return Err(ApiError::precondition_failed(rt, name, &why));
        }
        if !finalizers(&old).is_empty() {
            if !old["metadata"]["deletionTimestamp"].is_null() {
                return Ok(present(rt, &old));
            }
            let mut marked = (*old).clone();
            marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let marked = state.store.put(&gr, marked);
            return Ok(present(rt, &marked));
        }
        let gone = remove_locked(&mut state, rt, &old);
        if rt.is("", "pods") {
            return Ok(present(rt, &gone));
        }
        Ok(success_status(rt, &gone))
    }

    /// DELETE on a collection: each matching object as a single DELETE would.
    pub fn delete_collection(&self, rt: &Arc<ResourceType>, namespace: Option<&str>, selectors: &super::super::selector::Selectors) -> Result<Value, ApiError> {
        let names: Vec<(String, String)> = {
            let state = self.lock();
            state
                .store
                .list(&rt.storage_key(), namespace)
                .filter(|o| selectors.matches(o))
                .map(|o| super::super::store::key_of(o))
                .collect()
        };
        let mut items = Vec::new();
        for (ns, name) in names {
            let ns = Some(ns).filter(|n| !n.is_empty());
            if let Ok(item) = self.delete(rt, ns.as_deref(), &name, &DeleteOptions::default()) {
                items.push(item);
            }
        }
        Ok(json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": items}))
    }
}

/// A body written through a converted kind, in its stored shape, with the kind it is stored
/// as (whose rules then apply); other kinds pass through.
fn stored_view(state: &State, rt: &Arc<ResourceType>, body: Value) -> (Arc<ResourceType>, Value) {
    match rt.conversion {
        super::super::conversion::Conversion::None => (rt.clone(), body),
        super::super::conversion::Conversion::EventsV1 => {
            let core = state.registry.find("", "v1", "events").expect("built in");
            (core, super::super::conversion::to_storage(rt, &body))
        }
    }
}

fn success_status(rt: &ResourceType, gone: &Value) -> Value {
    let mut details = json!({"name": gone["metadata"]["name"], "kind": rt.plural, "uid": gone["metadata"]["uid"]});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

pub(super) fn create_locked(state: &mut State, rt: &Arc<ResourceType>, namespace: Option<&str>, mut body: Value, ctx: &WriteContext, from_apply: bool) -> Result<Arc<Value>, ApiError> {
    check_type(rt, &body)?;
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    let meta = &mut body["metadata"];
    if rt.namespaced {
        let ns = namespace.unwrap_or_default();
        if meta["namespace"].as_str().is_some_and(|n| !n.is_empty() && n != ns) {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
        meta["namespace"] = json!(ns);
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    if meta["name"].as_str().unwrap_or_default().is_empty() {
        match meta["generateName"].as_str() {
            Some(prefix) if !prefix.is_empty() => meta["name"] = json!(format!("{prefix}{}", meta::name_suffix())),
            _ => {
                return Err(invalid(rt, "", &[FieldError::required("metadata.name", "name or generateName is required")]));
            }
        }
    }
    let name = meta["name"].as_str().unwrap_or_default().to_string();
    let errors = validate_name(rt, &name);
    if !errors.is_empty() {
        return Err(invalid(rt, &name, &errors));
    }
    if let Some(ns) = namespace.filter(|_| rt.namespaced) {
        let namespaces = state.registry.find("", "v1", "namespaces").expect("built in");
        match state.store.get(&namespaces.storage_key(), "", ns) {
            None => return Err(ApiError::namespace_not_found(ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                return Err(ApiError::new(403, "Forbidden", format!("{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated", rt.group_resource())));
            }
            Some(_) => {}
        }
    }
    let gr = rt.storage_key();
    if state.store.get(&gr, namespace.unwrap_or_default(), &name).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    let meta = body["metadata"].as_object_mut().expect("made an object above");
    for field in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
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
    if rt.status_subresource && !rt.status_on_create
        && let Some(map) = body.as_object_mut()
    {
        map.remove("status");
    }
    let mut registers = None;
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => {
            body["status"] = json!({"loadBalancer": {}});
            state.services.prepare(None, &mut body).map_err(|errors| invalid(rt, &name, &errors))?;
        }
        ("", "namespaces") => {
            body["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            body["spec"] = json!({"finalizers": ["kubernetes"]});
            body["status"] = json!({"phase": "Active"});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            registers = Some(crd::prepare(&mut body).map_err(|errors| invalid(rt, &name, &errors))?);
        }
        _ => {}
    }
    if let Some(schema) = rt.schema.as_ref().filter(|_| rt.printer_columns.is_some()) {
        crd::prune_and_default(schema, &mut body);
        let errors = schema::validate(schema, &body, None);
        if !errors.is_empty() {
            return Err(invalid(rt, &name, &errors));
        }
    }
    if !from_apply {
        let api_version = rt.api_version();
        apply::record_update(None, &mut body, &ListRules::for_type(rt, true), &owner(ctx, rt, &api_version, None));
    }
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

pub(super) fn update_locked(state: &mut State, rt: &Arc<ResourceType>, old: &Arc<Value>, mut new: Value, sub: Option<&str>, ctx: &WriteContext, from_apply: bool) -> Result<Arc<Value>, ApiError> {
    let name = old["metadata"]["name"].as_str().unwrap_or_default().to_string();
    check_type(rt, &new)?;
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str().filter(|rv| !rv.is_empty())
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
    for field in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
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
            return Err(invalid(rt, &name, &[FieldError::forbidden("metadata.finalizers", "no new finalizers can be added if the object is being deleted")]));
        }
    }
    let mut registers = None;
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => {
            // Validate against a scratch allocator state first would double the work; prepare
            // is all-or-nothing, so it is safe to run on the real one.
            state.services.prepare(Some(old), &mut new).map_err(|errors| invalid(rt, &name, &errors))?;
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") if sub.is_none() => {
            registers = Some(crd::prepare(&mut new).map_err(|errors| invalid(rt, &name, &errors))?);
        }
        _ => {}
    }
    if let Some(schema) = rt.schema.as_ref().filter(|_| rt.printer_columns.is_some()) {
        crd::prune_and_default(schema, &mut new);
        let errors = schema::validate(schema, &new, Some(old));
        if !errors.is_empty() {
            return Err(invalid(rt, &name, &errors));
        }
    }
    if rt.generation && spec_part(&new) != spec_part(old) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = json!(generation);
    }
    if !from_apply {
        let api_version = rt.api_version();
        apply::record_update(Some(old), &mut new, &ListRules::for_type(rt, true), &owner(ctx, rt, &api_version, sub));
    }
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

/// Removes an object and undoes what it held: allocations, a CRD's kinds and objects, a
/// namespace's contents.
pub(super) fn remove_locked(state: &mut State, rt: &ResourceType, object: &Value) -> Arc<Value> {
    let (namespace, name) = super::super::store::key_of(object);
    let gone = state.store.remove(&rt.storage_key(), &namespace, &name).unwrap_or_else(|| Arc::new(object.clone()));
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => state.services.release(object),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let group = object["spec"]["group"].as_str().unwrap_or_default();
            let plural = object["spec"]["names"]["plural"].as_str().unwrap_or_default();
            let served = state.registry.all().iter().find(|t| t.is(group, plural) && t.printer_columns.is_some()).cloned();
            state.registry.set_custom(group, plural, Vec::new());
            if let Some(served) = served {
                let keys: Vec<_> = state.store.list(&served.storage_key(), None).map(|o| super::super::store::key_of(o)).collect();
                for (ns, name) in keys {
                    state.store.remove(&served.storage_key(), &ns, &name);
                }
            }
        }
        ("", "namespaces") => {
            // The namespace controller's work, done at once: everything in it goes too.
            let namespaced: Vec<Arc<ResourceType>> = state.registry.all().iter().filter(|t| t.namespaced).cloned().collect();
            let mut seen = std::collections::BTreeSet::new();
            for t in namespaced {
                if !seen.insert(t.storage_key()) {
                    continue;
                }
                let objects: Vec<Arc<Value>> = state.store.list(&t.storage_key(), Some(&name)).cloned().collect();
                for o in objects {
                    remove_locked(state, &t, &o);
                }
            }
        }
        _ => {}
    }
    gone
}
