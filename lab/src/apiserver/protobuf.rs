//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), turned into the JSON the
//! server stores, for the built-in kinds Go clients send that way (kubectl's `create`
//! generators do).
//!
//! ```text
//!   "k8s\0" ─ runtime.Unknown { typeMeta{apiVersion, kind}, raw } ── envelope (this file)
//!                                          │
//!                      raw ─ prost decode as k8s-pb's type for apiVersion/kind
//!                                          │
//!                      core, pod, apps, node, events, discovery, rbac, coordination:
//!                      message → JSON with Go's omitempty rules (json.rs)
//! ```
//! Custom resources have no protobuf form; the real server answers them 415, and so does the
//! caller (`routes`). Kinds not mapped here, and pod specs setting fields `pod.rs` does not
//! map, answer 415 too (the reason is logged at debug), so nothing is stored half-decoded.

use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::Value;

mod apps;
mod coordination;
mod core;
mod discovery;
mod events;
mod json;
mod node;
mod pod;
mod rbac;

/// The media type, as requests name it in `Content-Type`.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these bytes ("k8s" and a zero).
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("the body does not start with the Kubernetes protobuf prefix")]
    MissingMagic,
    #[error("the protobuf envelope could not be decoded: {0}")]
    Envelope(#[source] prost::DecodeError),
    #[error("the protobuf envelope uses content encoding {0:?}, which is not supported")]
    ContentEncoding(String),
    #[error("the protobuf body of {kind} could not be decoded: {source}")]
    Object {
        kind: String,
        source: prost::DecodeError,
    },
    #[error("{0} is set, which this server does not read from protobuf; send the object as JSON")]
    UnmappedField(String),
    #[error("{kind} in {api_version} cannot be sent as protobuf to this server")]
    UnsupportedKind { api_version: String, kind: String },
}

impl ProtobufError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ProtobufError::MissingMagic => "missing_magic",
            ProtobufError::Envelope(_) => "envelope",
            ProtobufError::ContentEncoding(_) => "content_encoding",
            ProtobufError::Object { .. } => "object",
            ProtobufError::UnmappedField(_) => "unmapped_field",
            ProtobufError::UnsupportedKind { .. } => "unsupported_kind",
        }
    }
}

/// What the envelope carries: the object's type and its encoded bytes.
#[derive(Debug, PartialEq)]
pub struct Envelope {
    pub api_version: String,
    pub kind: String,
    pub raw: Vec<u8>,
}

pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Strips the prefix and decodes the `runtime.Unknown` around the object.
pub fn open_envelope(body: &[u8]) -> Result<Envelope, ProtobufError> {
    let message = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let unknown = Unknown::decode(message).map_err(ProtobufError::Envelope)?;
    if let Some(encoding) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(ProtobufError::ContentEncoding(encoding));
    }
    let type_meta = unknown.type_meta.unwrap_or_default();
    Ok(Envelope {
        api_version: type_meta.api_version.unwrap_or_default(),
        kind: type_meta.kind.unwrap_or_default(),
        raw: unknown.raw.unwrap_or_default(),
    })
}

/// A protobuf body as the JSON object a JSON client would have sent.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    to_json(&open_envelope(body)?)
}

fn to_json(envelope: &Envelope) -> Result<Value, ProtobufError> {
    use k8s_pb::api::{
        coordination::v1 as coordination_v1, core::v1 as core_v1, rbac::v1 as rbac_v1,
    };
    let json = match (envelope.api_version.as_str(), envelope.kind.as_str()) {
        ("v1", "Namespace") => core::namespace(&message::<core_v1::Namespace>(envelope)?),
        ("v1", "Service") => core::service(&message::<core_v1::Service>(envelope)?),
        ("v1", "ConfigMap") => core::config_map(&message::<core_v1::ConfigMap>(envelope)?),
        ("v1", "Secret") => core::secret(&message::<core_v1::Secret>(envelope)?),
        ("v1", "ServiceAccount") => {
            core::service_account(&message::<core_v1::ServiceAccount>(envelope)?)
        }
        ("v1", "Pod") => pod::pod(&message::<core_v1::Pod>(envelope)?)?,
        ("apps/v1", "Deployment") => {
            apps::deployment(&message::<k8s_pb::api::apps::v1::Deployment>(envelope)?)?
        }
        ("apps/v1", "DaemonSet") => {
            apps::daemon_set(&message::<k8s_pb::api::apps::v1::DaemonSet>(envelope)?)?
        }
        ("v1", "Node") => node::node(&message::<core_v1::Node>(envelope)?),
        ("v1", "Event") => events::core_event(&message::<core_v1::Event>(envelope)?),
        ("events.k8s.io/v1", "Event") => {
            events::event(&message::<k8s_pb::api::events::v1::Event>(envelope)?)
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => discovery::endpoint_slice(&message::<
            k8s_pb::api::discovery::v1::EndpointSlice,
        >(envelope)?),
        ("rbac.authorization.k8s.io/v1", "Role") => {
            rbac::role(&message::<rbac_v1::Role>(envelope)?)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            rbac::cluster_role(&message::<rbac_v1::ClusterRole>(envelope)?)
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            rbac::role_binding(&message::<rbac_v1::RoleBinding>(envelope)?)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            rbac::cluster_role_binding(&message::<rbac_v1::ClusterRoleBinding>(envelope)?)
        }
        ("coordination.k8s.io/v1", "Lease") => {
            coordination::lease(&message::<coordination_v1::Lease>(envelope)?)
        }
        (api_version, kind) => {
            return Err(ProtobufError::UnsupportedKind {
                api_version: api_version.into(),
                kind: kind.into(),
            });
        }
    };
    Ok(json)
}

fn message<M: Message + Default>(envelope: &Envelope) -> Result<M, ProtobufError> {
    M::decode(envelope.raw.as_slice()).map_err(|source| ProtobufError::Object {
        kind: envelope.kind.clone(),
        source,
    })
}

#[cfg(test)]
mod tests;
