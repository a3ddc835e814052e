//! Response helpers: every body the server writes is JSON, as a real API server answers a client
//! that accepts JSON (kubectl and kube-rs both do; neither needs protobuf), or YAML for a client
//! that asks for it first.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

pub fn json<T: Serialize + ?Sized>(code: StatusCode, body: &T) -> Response {
    json_as(code, "application/json", body)
}

/// JSON under a more specific media type (aggregated discovery names its kind in it).
pub fn json_as<T: Serialize + ?Sized>(
    code: StatusCode,
    content_type: &'static str,
    body: &T,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON response re-encoded as YAML (other responses pass through).
pub async fn as_yaml(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let yaml = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| serde_yaml_ng::to_string(&value).ok());
    match yaml {
        Some(yaml) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(yaml))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

pub fn ok<T: Serialize + ?Sized>(body: &T) -> Response {
    json(StatusCode::OK, body)
}

/// An object as `PartialObjectMetadata` (what metadata-only clients such as kube-rs's
/// `metadata_watcher` ask for with `Accept: ...;as=PartialObjectMetadata`).
pub fn partial_metadata(object: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

/// A list as `PartialObjectMetadataList`.
pub fn partial_metadata_list(list: &serde_json::Value) -> serde_json::Value {
    let items: Vec<serde_json::Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(partial_metadata)
        .collect();
    serde_json::json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list["metadata"],
        "items": items,
    })
}
