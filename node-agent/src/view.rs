//! Compact projections of the Services and EndpointSlices the agent watches: only what the
//! dataplane, the health servers, the slice warnings and the announcer's Local check read,
//! parsed once when the object arrives instead of on every sync.
//!
//! ```text
//!   watch Services ───────▶ ServiceView::from      names as Arc<str>, IPs and ports parsed,
//!                                                   policies as enums
//!   watch EndpointSlices ─▶ SliceView::project     endpoints as (IP, node, ready, serving,
//!                                                   terminating), node names shared; the
//!                                                   slice's problems judged once per version
//!         ─▶ reflector stores (kube-runtime keeps any `Lookup + Clone` type)
//!         ─▶ dataplane::build::desired_state_of ─▶ DesiredState
//! ```
//!
//! A k8s-openapi `EndpointSlice` endpoint is ~350 bytes before its strings, and the store keeps
//! every object whole: at 10,000 Services × 5 endpoints the views are a fraction of even the
//! trimmed objects. What a view leaves out, the dataplane leaves out too (`dataplane::build`
//! reads only views; its tests build from whole objects through `ServiceView::from` and
//! `SliceView::from`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Resource;
use kube::runtime::reflector::Lookup;

mod service;
mod slice;

pub use service::{DEFAULT_AFFINITY_TIMEOUT_SECONDS, PortView, ServiceView};
pub use slice::{EndpointView, SlicePortView, SliceProblems, SliceView};

/// Shares the few distinct strings that recur in every object (namespaces, node names): one
/// allocation per distinct value instead of one per endpoint.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
}

/// Past this many distinct strings the interner starts over (namespaces and nodes come and
/// go; the shared values stay valid, only the sharing restarts).
const INTERNER_LIMIT: usize = 16_384;

impl Interner {
    pub fn get(&mut self, value: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(value) {
            return shared.clone();
        }
        if self.strings.len() >= INTERNER_LIMIT {
            self.strings.clear();
        }
        let shared: Arc<str> = Arc::from(value);
        self.strings.insert(shared.clone());
        shared
    }
}

/// The store key of a view is its kind's, namespace and name: no uid or resourceVersion (the
/// key would hold a copy of each, and no reader needs them).
macro_rules! lookup_as {
    ($view:ty, $kind:ty) => {
        impl Lookup for $view {
            type DynamicType = ();

            fn kind(_: &()) -> Cow<'_, str> {
                <$kind as Resource>::kind(&())
            }

            fn group(_: &()) -> Cow<'_, str> {
                <$kind as Resource>::group(&())
            }

            fn version(_: &()) -> Cow<'_, str> {
                <$kind as Resource>::version(&())
            }

            fn plural(_: &()) -> Cow<'_, str> {
                <$kind as Resource>::plural(&())
            }

            fn name(&self) -> Option<Cow<'_, str>> {
                Some(Cow::Borrowed(&self.name))
            }

            fn namespace(&self) -> Option<Cow<'_, str>> {
                Some(Cow::Borrowed(&self.namespace))
            }

            fn resource_version(&self) -> Option<Cow<'_, str>> {
                None
            }

            fn uid(&self) -> Option<Cow<'_, str>> {
                None
            }
        }
    };
}

lookup_as!(ServiceView, Service);
lookup_as!(SliceView, EndpointSlice);

#[cfg(test)]
mod tests;
