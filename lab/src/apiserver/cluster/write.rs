//! The write verbs: create, update (PUT) and patch (every kind, apply included), each run on
//! the state or, for a dry run, on a scratch copy, through the pipeline in `pipeline.rs`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::apply;
use super::super::conversion::{self, Conversion};
use super::super::patch::{self, ListRules};
use super::super::resources::ResourceType;
use super::super::status::ApiError;
use super::super::validation;
use super::decode::{self, FieldValidation, Warnings};
use super::pipeline::{check_type, create_locked, owner, update_locked};
use super::{Cluster, State, present};

/// One object, or its status, as a request path names it.
#[derive(Clone, Copy)]
pub struct ObjectRef<'a> {
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub subresource: Option<&'a str>,
}

/// Who writes, as `managedFields` records it.
#[derive(Debug)]
pub struct WriteContext {
    pub manager: String,
    pub force: bool,
    /// `dryRun=All`: check and answer, store nothing.
    pub dry_run: bool,
    /// What to do with fields the kind does not declare.
    pub field_validation: FieldValidation,
    /// What the response's `Warning` headers say (unknown fields under `Warn`).
    pub warnings: Warnings,
}

impl WriteContext {
    pub fn system() -> Self {
        WriteContext {
            manager: "kube-apiserver".into(),
            force: false,
            dry_run: false,
            field_validation: FieldValidation::Ignore,
            warnings: Warnings::default(),
        }
    }
}

impl Cluster {
    pub fn create(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        body: Value,
        ctx: &WriteContext,
    ) -> Result<Value, ApiError> {
        check_type(rt, &body)?;
        let body = decode::typed_body(rt, ctx, body)?;
        check_converted_create(rt, namespace, &body)?;
        self.write(ctx.dry_run, |state| {
            let (stored_rt, body, recorded) =
                stored_view(state, rt, None, body, (ctx, None, false));
            let created = create_locked(state, &stored_rt, namespace, body, ctx, recorded)?;
            Ok(dry_run_result(ctx, present(rt, &created), None))
        })
    }

    pub fn update(
        &self,
        rt: &Arc<ResourceType>,
        target: &ObjectRef,
        body: Value,
        ctx: &WriteContext,
    ) -> Result<Value, ApiError> {
        let ObjectRef {
            namespace,
            name,
            subresource: sub,
        } = *target;
        check_type(rt, &body)?;
        if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        let body = decode::typed_body(rt, ctx, body)?;
        self.write(ctx.dry_run, |state| {
            let old = state
                .store
                .get(&rt.storage_key(), namespace.unwrap_or_default(), name)
                .ok_or_else(|| ApiError::not_found(rt, name))?;
            let (stored_rt, body, recorded) =
                stored_view(state, rt, Some(&old), body, (ctx, sub, false));
            let updated = update_locked(state, &stored_rt, &old, body, sub, ctx, recorded)?;
            Ok(dry_run_result(ctx, present(rt, &updated), Some(&old)))
        })
    }

    /// Returns the object and whether the patch created it (an apply may).
    pub fn patch(
        &self,
        rt: &Arc<ResourceType>,
        target: &ObjectRef,
        content_type: &str,
        body: &[u8],
        ctx: &WriteContext,
    ) -> Result<(Value, bool), ApiError> {
        let ObjectRef {
            namespace,
            name,
            subresource: sub,
        } = *target;
        self.write(ctx.dry_run, |state| {
            let old = state
                .store
                .get(&rt.storage_key(), namespace.unwrap_or_default(), name);
            if content_type != patch::APPLY_PATCH {
                let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
                let patched = patch::patch_object(content_type, rt, &present(rt, &old), body)?;
                let patched = decode::typed_body(rt, ctx, patched)?;
                let (stored_rt, patched, recorded) =
                    stored_view(state, rt, Some(&old), patched, (ctx, sub, false));
                let updated = update_locked(state, &stored_rt, &old, patched, sub, ctx, recorded)?;
                return Ok((
                    dry_run_result(ctx, present(rt, &updated), Some(&old)),
                    false,
                ));
            }
            let applied: Value = serde_yaml_ng::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            check_type(rt, &applied)?;
            let applied = decode::apply_config(rt, ctx, applied)?;
            if applied["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n != name)
            {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            // A resourceVersion in the configuration is a precondition, as for an update.
            if let Some(rv) = applied["metadata"]["resourceVersion"]
                .as_str()
                .filter(|rv| !rv.is_empty())
                && old
                    .as_ref()
                    .is_none_or(|o| o["metadata"]["resourceVersion"].as_str() != Some(rv))
            {
                return Err(ApiError::conflict(rt, name));
            }
            let api_version = rt.api_version();
            let rules = ListRules::for_type(rt, true);
            let owner = owner(ctx, &api_version, sub);
            let live = old.as_deref().map(|o| present(rt, o));
            let result = apply::apply(live.as_ref(), &applied, &rules, &owner, ctx.force)
                .map_err(apply_conflict)?;
            let result = decode::typed_body(rt, ctx, result)?;
            if old.is_none() {
                check_converted_create(rt, namespace, &result)?;
            }
            let (stored_rt, result, _) =
                stored_view(state, rt, old.as_deref(), result, (ctx, sub, true));
            match old {
                None => {
                    let mut applied = result;
                    if applied["metadata"]["name"].is_null() {
                        applied["metadata"]["name"] = json!(name);
                    }
                    let created = create_locked(state, &stored_rt, namespace, applied, ctx, true)?;
                    Ok((dry_run_result(ctx, present(rt, &created), None), true))
                }
                Some(old) => {
                    let updated = update_locked(state, &stored_rt, &old, result, sub, ctx, true)?;
                    Ok((
                        dry_run_result(ctx, present(rt, &updated), Some(&old)),
                        false,
                    ))
                }
            }
        })
    }
}

/// A body written through a converted kind, in its stored shape, with the kind it is stored
/// as (whose rules then apply); other kinds pass through. A converted write's managedFields
/// are recorded here, in the shape and apiVersion the client wrote, as upstream records them
/// per version; the returned flag tells the pipeline whether they are recorded already.
fn stored_view(
    state: &State,
    rt: &Arc<ResourceType>,
    old: Option<&Value>,
    mut body: Value,
    (ctx, sub, recorded): (&WriteContext, Option<&str>, bool),
) -> (Arc<ResourceType>, Value, bool) {
    match rt.conversion {
        Conversion::None => (rt.clone(), body, recorded),
        Conversion::EventsV1 => {
            if !recorded {
                let api_version = rt.api_version();
                let old_view = old.map(|o| present(rt, o));
                apply::record_update(
                    old_view.as_ref(),
                    &mut body,
                    &ListRules::for_type(rt, true),
                    &owner(ctx, &api_version, sub),
                );
            }
            let core = state.registry.find("", "v1", "events").expect("built in");
            (core, conversion::to_storage(rt, &body), true)
        }
    }
}

/// The create rules of a kind written in another kind's shape, checked in the client's shape.
fn check_converted_create(
    rt: &ResourceType,
    namespace: Option<&str>,
    body: &Value,
) -> Result<(), ApiError> {
    if rt.conversion == Conversion::None {
        return Ok(());
    }
    let mut body = body.clone();
    body["metadata"]["namespace"] = json!(namespace.unwrap_or_default());
    let errors = match rt.conversion {
        Conversion::None => Vec::new(),
        Conversion::EventsV1 => validation::event_v1_create(&body),
    };
    if errors.is_empty() {
        return Ok(());
    }
    let name = body["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(&rt.kind, &rt.group, name, &errors))
}

/// A dry run answers what would have been stored, with the resourceVersion it had (none for a
/// create), as nothing was written.
fn dry_run_result(ctx: &WriteContext, mut object: Value, old: Option<&Value>) -> Value {
    if ctx.dry_run {
        match old.map(|o| o["metadata"]["resourceVersion"].clone()) {
            Some(rv) => object["metadata"]["resourceVersion"] = rv,
            None => {
                if let Some(meta) = object["metadata"].as_object_mut() {
                    meta.remove("resourceVersion");
                }
            }
        }
    }
    object
}

fn apply_conflict(conflicts: Vec<apply::Conflict>) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
        .collect();
    let listed: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
        .collect();
    let noun = if conflicts.len() == 1 {
        "conflict"
    } else {
        "conflicts"
    };
    ApiError {
        details: Some(json!({"causes": causes})),
        ..ApiError::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {} {noun}: {}",
                conflicts.len(),
                listed.join("\n")
            ),
        )
    }
}
