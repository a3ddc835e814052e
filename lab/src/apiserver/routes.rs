//! Request routing: one handler parses the Kubernetes path grammar
//! (`/api/v1[/namespaces/{ns}]/{resource}[/{name}[/status]]`, `/apis/{group}/{version}/...`)
//! against the kinds served right now, checks the bearer token, and maps the HTTP method (and
//! `watch`) to a verb.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::cluster::{Cluster, DeleteOptions, ObjectRef, Page, WriteContext};
use super::options::{ListOptions, WriteOptions};
use super::protobuf::{self, ProtobufError};
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector, Selectors};
use super::status::ApiError;
use super::watch::{WatchRequest, watch};
use super::{discovery, openapi, patch, respond, table};

pub struct Server {
    pub cluster: Cluster,
    pub token: String,
    pub bookmark_interval: Duration,
}

/// The largest request body the real API server takes (etcd's limit is about the same).
const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

async fn handle(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    // A request that trips a bug answers 500 like any server, instead of dropping the
    // connection (and the state stays usable: the lock recovers from poisoning).
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatch(&server, &method, &uri, &headers, &body)
    }));
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.into_response(),
        Err(_) => ApiError::new(
            500,
            "InternalError",
            "an error on the server has prevented the request from succeeding",
        )
        .into_response(),
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    if wants_yaml(&headers) && !uri.query().is_some_and(|q| q.contains("watch=true")) {
        return respond::as_yaml(response).await;
    }
    response
}

/// `Accept: application/yaml` (first choice): the answer in YAML, as the real server serves it.
fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| {
            first.split(';').next().unwrap_or_default().trim() == "application/yaml"
        })
}

struct Request<'a> {
    query: HashMap<String, String>,
    headers: &'a HeaderMap,
}

impl Request<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    fn wants_aggregated_discovery(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"))
    }

    fn wants_metadata(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=PartialObjectMetadata"))
    }

    fn wants_table(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=Table"))
    }

    fn content_type(&self) -> &str {
        let value = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        value.split(';').next().unwrap_or_default().trim()
    }

    /// The options of a write, checked (`options` names their kind in errors).
    fn write_context(&self, options: &str) -> Result<WriteContext, ApiError> {
        self.write_options().check(options)
    }

    fn check_patch_options(&self) -> Result<(), ApiError> {
        self.write_options()
            .check_patch(self.content_type() == patch::APPLY_PATCH)
    }

    fn write_options(&self) -> WriteOptions<'_> {
        WriteOptions {
            dry_run: self.param("dryRun"),
            field_manager: self.param("fieldManager"),
            field_validation: self.param("fieldValidation"),
            force: self.param("force"),
            user_agent: self
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        }
    }

    fn list_options(&self, watch: bool) -> ListOptions<'_> {
        ListOptions {
            watch,
            resource_version: self.param("resourceVersion"),
            resource_version_match: self.param("resourceVersionMatch"),
            send_initial_events: self.param("sendInitialEvents"),
            allow_watch_bookmarks: self.flag("allowWatchBookmarks"),
            continue_token: self.param("continue"),
        }
    }

    fn selectors(&self, rt: &ResourceType) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: LabelSelector::parse(self.param("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(self.param("fieldSelector").unwrap_or_default(), rt)?,
        })
    }
}

/// Each warning of a write as a `Warning: 299 - "text"` header, as the real server sends them.
fn with_warnings(mut response: Response, ctx: &WriteContext) -> Response {
    for warning in ctx.warnings.take() {
        if let Ok(value) = header::HeaderValue::from_str(&format!("299 - {warning:?}")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn authorized(server: &Server, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim() == server.token)
}

/// A request body as JSON: JSON or YAML as sent, protobuf decoded for the built-in kinds
/// that have a protobuf form. Custom resources have none, so a protobuf body for one answers
/// 415 as the real server does.
fn decode_body(request: &Request, rt: &ResourceType, body: &[u8]) -> Result<Value, ApiError> {
    if request.content_type() == protobuf::MEDIA_TYPE || protobuf::is_protobuf(body) {
        let is_custom = rt.printer_columns.is_some();
        if is_custom {
            return Err(ApiError::unsupported_media_type(protobuf::MEDIA_TYPE));
        }
        return protobuf::decode(body).map_err(|e| {
            tracing::debug!(error = %e, label = e.label(), "protobuf body rejected");
            match e {
                ProtobufError::UnsupportedKind { .. } | ProtobufError::UnmappedField(_) => {
                    ApiError::unsupported_media_type(protobuf::MEDIA_TYPE)
                }
                other => ApiError::bad_request(format!(
                    "the body of the request could not be decoded: {other}"
                )),
            }
        });
    }
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml_ng::from_slice(body))
        .map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
}

fn dispatch(
    server: &Server,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => return Ok((StatusCode::OK, "ok").into_response()),
        ["version"] => return Ok(respond::ok(&discovery::version())),
        _ => {}
    }
    if !authorized(server, headers) {
        return Err(ApiError::unauthorized());
    }
    let query = Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let request = Request { query, headers };
    let cluster = &server.cluster;
    let discovery_only = |value: Option<Value>| {
        value
            .map(|v| respond::ok(&v))
            .ok_or_else(ApiError::no_route)
    };
    match segments.as_slice() {
        ["api" | "apis"] if request.wants_aggregated_discovery() => {
            let body = discovery::aggregated(&cluster.lock().registry, segments[0] == "api");
            Ok(respond::json_as(
                StatusCode::OK,
                discovery::AGGREGATED_CONTENT_TYPE,
                &body,
            ))
        }
        ["api"] => Ok(respond::ok(&discovery::core_versions())),
        ["apis"] => Ok(respond::ok(&discovery::group_list(
            &cluster.lock().registry,
        ))),
        ["openapi", "v3"] => {
            let state = cluster.lock();
            Ok(respond::ok(&openapi::root(
                &state.registry,
                state.store.resource_version(),
            )))
        }
        ["openapi", "v3", rest @ ..] => discovery_only(openapi::group_version(
            &cluster.lock().registry,
            &rest.join("/"),
        )),
        ["api", version] => discovery_only(discovery::resource_list(
            &cluster.lock().registry,
            "",
            version,
        )),
        ["apis", group] => discovery_only(discovery::group(&cluster.lock().registry, group)),
        ["apis", group, version] => discovery_only(discovery::resource_list(
            &cluster.lock().registry,
            group,
            version,
        )),
        ["api", version, rest @ ..] => {
            resource(server, &request, method, ("", version), rest, body)
        }
        ["apis", group, version, rest @ ..] => {
            resource(server, &request, method, (group, version), rest, body)
        }
        _ => Err(ApiError::no_route()),
    }
}

fn resource(
    server: &Server,
    request: &Request,
    method: &Method,
    (group, version): (&str, &str),
    rest: &[&str],
    body: &[u8],
) -> Result<Response, ApiError> {
    let cluster = &server.cluster;
    // `/api/v1/namespaces/{name}/status` is the Namespace's own subresource, not a resource
    // called "status" in that namespace.
    let namespace_subresource = group.is_empty()
        && rest.len() == 3
        && rest[0] == "namespaces"
        && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" && !namespace_subresource
    {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_route()),
    };
    let rt = cluster
        .resource(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    if namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route());
    }
    if sub.is_some_and(|s| s != "status" || !rt.status_subresource) {
        return Err(ApiError::no_route());
    }
    if rt.namespaced && namespace.is_none() && (name.is_some() || *method != Method::GET) {
        return if name.is_some() {
            Err(ApiError::no_route())
        } else {
            Err(ApiError::method_not_allowed())
        };
    }
    match (method.clone(), name) {
        (Method::GET, Some(name)) => {
            let object = cluster.get(&rt, namespace, name)?;
            if request.wants_table() {
                let rv = object["metadata"]["resourceVersion"].clone();
                let include = request.param("includeObject").unwrap_or("Metadata");
                return Ok(respond::ok(&table::table(
                    &rt,
                    &[object],
                    &rv,
                    &Value::Null,
                    include,
                )));
            }
            if request.wants_metadata() {
                return Ok(respond::ok(&respond::partial_metadata(&object)));
            }
            Ok(respond::ok(&object))
        }
        (Method::GET, None) if request.flag("watch") => {
            let read_at = request.list_options(true).check()?;
            let timeout = request
                .param("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1800);
            let selectors = request.selectors(&rt)?;
            let watch_request = WatchRequest {
                rt,
                namespace: namespace.map(String::from),
                selectors,
                resource_version: read_at.resource_version,
                send_initial_events: read_at.send_initial_events,
                allow_bookmarks: request.flag("allowWatchBookmarks"),
                timeout: Duration::from_secs(timeout),
                bookmark_interval: server.bookmark_interval,
                table: request.wants_table().then(|| {
                    request
                        .param("includeObject")
                        .unwrap_or("Metadata")
                        .to_string()
                }),
                headers_sent: Default::default(),
                metadata_only: request.wants_metadata(),
            };
            watch(cluster, watch_request)
        }
        (Method::GET, None) => {
            let read_at = request.list_options(false).check()?;
            let page = Page {
                limit: request.param("limit").and_then(|l| l.parse().ok()),
                continue_token: request.param("continue").map(String::from),
                resource_version: read_at.resource_version,
                exact: read_at.exact,
            };
            let list = cluster.list(&rt, namespace, &request.selectors(&rt)?, &page)?;
            if request.wants_table() {
                let items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
                let items: Vec<Value> = items
                    .iter()
                    .map(|i| super::cluster::present(&rt, i))
                    .collect();
                let include = request.param("includeObject").unwrap_or("Metadata");
                return Ok(respond::ok(&table::table(
                    &rt,
                    &items,
                    &list["metadata"]["resourceVersion"],
                    &list["metadata"]["continue"],
                    include,
                )));
            }
            if request.wants_metadata() {
                return Ok(respond::ok(&respond::partial_metadata_list(&list)));
            }
            Ok(respond::ok(&list))
        }
        (Method::POST, None) => {
            let ctx = request.write_context("CreateOptions")?;
            let created = cluster.create(&rt, namespace, decode_body(request, &rt, body)?, &ctx)?;
            Ok(with_warnings(
                respond::json(StatusCode::CREATED, &created),
                &ctx,
            ))
        }
        (Method::PUT, Some(name)) => {
            let ctx = request.write_context("UpdateOptions")?;
            let target = ObjectRef {
                namespace,
                name,
                subresource: sub,
            };
            let updated = cluster.update(&rt, &target, decode_body(request, &rt, body)?, &ctx)?;
            Ok(with_warnings(respond::ok(&updated), &ctx))
        }
        (Method::PATCH, Some(name)) => {
            let ctx = request.write_context("PatchOptions")?;
            request.check_patch_options()?;
            let target = ObjectRef {
                namespace,
                name,
                subresource: sub,
            };
            let (object, created) =
                cluster.patch(&rt, &target, request.content_type(), body, &ctx)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_warnings(respond::json(code, &object), &ctx))
        }
        (Method::DELETE, Some(name)) => {
            let ctx = request.write_context("DeleteOptions")?;
            let mut options = if body.is_empty() {
                DeleteOptions::default()
            } else {
                DeleteOptions::from_body(&decode_body(request, &rt, body)?)
            };
            options.dry_run |= ctx.dry_run;
            options.foreground |= request.param("propagationPolicy") == Some("Foreground");
            Ok(respond::ok(
                &cluster.delete(&rt, namespace, name, &options)?,
            ))
        }
        (Method::DELETE, None) => Ok(respond::ok(&cluster.delete_collection(
            &rt,
            namespace,
            &request.selectors(&rt)?,
        )?)),
        _ => Err(ApiError::method_not_allowed()),
    }
}
