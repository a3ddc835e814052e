//! A fake Compute Engine API on loopback (no emulator exists): the `/compute/v1/projects/{p}/
//! regions/{r}/...` and `/global/...` paths the google-cloud-compute-v1 client calls for
//! addresses, firewalls, HTTP health checks, target pools and forwarding rules, and their
//! Operations. Tests read and change its state behind the controller's back, make it answer
//! 429 (`rateLimitExceeded`), make an Operation fail, and count the calls.
//!
//! It lives in the lab crate so that `portico-lab fake-compute --listen ADDR` can run it
//! detached for `portico-lab up --provider gcp`; the tests reach it as
//! `portico_tests::fake_compute`. The lab cloud (`cloud::gcp`) reads it like any API client and
//! reports the health it measured through one path that is not Google's
//! (`PUT /lab/health/{pool}`), so `targetPools.getHealth` answers with the lab cloud's view.

mod health;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use self::state::{Answer, Page, State, error};
pub use self::state::{PROJECT, REGION};

/// One request the fake answered: method, path, and whether it was throttled.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub throttled: bool,
}

impl Call {
    /// Mutations (inserts, updates, deletes, pool actions), not reads or operation polls.
    pub fn is_write(&self) -> bool {
        self.method != "GET" && !self.path.contains("/operations/")
    }
}

#[derive(Default)]
struct Shared {
    state: State,
    calls: Vec<Call>,
    /// Answer this many of the next requests with 429.
    throttle: u32,
}

#[derive(Clone)]
pub struct FakeCompute {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl FakeCompute {
    /// On a free loopback port (tests).
    pub async fn start() -> FakeCompute {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the fake Compute server binds a loopback port")
    }

    /// On `listen` (the lab cloud in its namespace reaches it on the host's lab address).
    pub async fn start_on(listen: SocketAddr) -> std::io::Result<FakeCompute> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let for_server = shared.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let shared = for_server.clone();
            async move { respond(&shared, &method, &uri, &body) }
        });
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeCompute { addr, shared })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A resource by collection (`addresses`, `firewalls`, `httpHealthChecks`, `targetPools`,
    /// `forwardingRules`) and name.
    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        let (status, value) = self.lock().state.get(collection, name);
        (status == 200).then_some(value)
    }

    /// Every resource of a collection.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        self.lock().state.list(collection, &Page::default()).1["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// How many resources there are, all collections together.
    pub fn count(&self) -> usize {
        self.lock().state.resources.len()
    }

    /// Replaces or removes a resource behind the controller's back (drift).
    pub fn set(&self, collection: &str, name: &str, value: Option<Value>) {
        let key = (collection.to_owned(), name.to_owned());
        let resources = &mut self.lock().state.resources;
        match value {
            Some(value) => resources.insert(key, value),
            None => resources.remove(&key),
        };
    }

    /// The API's insert and delete, without HTTP (to check its rules, e.g. a wrong delete order).
    pub fn insert(&self, collection: &str, body: Value) -> (u16, Value) {
        self.lock().state.insert(collection, body)
    }

    pub fn delete(&self, collection: &str, name: &str) -> (u16, Value) {
        self.lock().state.delete(collection, name)
    }

    /// What `targetPools.getHealth` answers for `instance` (a URL) of `pool`.
    pub fn pool_health(&self, pool: &str, instance: &str) -> (u16, Value) {
        self.lock()
            .state
            .pool_health(pool, serde_json::json!({ "instance": instance }))
    }

    /// The lab cloud's report, without HTTP: instance URL → `HEALTHY`/`UNHEALTHY`.
    pub fn report_health(&self, pool: &str, members: Value) -> (u16, Value) {
        self.lock().state.report_health(pool, members)
    }

    /// Numbers reserved addresses from `base` (`base`+1 first) instead of 203.0.113.0.
    pub fn set_address_base(&self, base: std::net::Ipv4Addr) {
        self.lock().state.address_base = Some(base);
    }

    /// Lists return at most `items` per page from now on (the real API may return fewer than
    /// `maxResults`; clients must follow `nextPageToken`).
    pub fn limit_pages(&self, items: usize) {
        self.lock().state.page_limit = Some(items.max(1));
    }

    pub fn throttle_next(&self, requests: u32) {
        self.lock().throttle = requests;
    }

    /// The next mutation on `collection` fails in its Operation with `code`.
    pub fn fail_next_operation(&self, collection: &str, code: &str) {
        self.lock()
            .state
            .operation_errors
            .push((collection.to_owned(), code.to_owned()));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn writes(&self) -> usize {
        self.calls().iter().filter(|c| c.is_write()).count()
    }
}

#[derive(clap::Args, Debug)]
pub struct FakeComputeArgs {
    /// Address to serve HTTP on (`host:0` picks a free port; the line on stdout names it).
    #[arg(
        long,
        env = "PORTICO_LAB_FAKE_COMPUTE_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    pub listen: SocketAddr,
    /// Reserved external addresses are numbered from this one (`.1` first).
    #[arg(
        long,
        env = "PORTICO_LAB_FAKE_COMPUTE_ADDRESS_BASE",
        default_value = "203.0.113.0"
    )]
    pub address_base: std::net::Ipv4Addr,
}

/// `portico-lab fake-compute`: serves until SIGTERM or SIGINT; prints one line with its URL,
/// flushed, so whoever started it detached can read the port.
pub async fn serve(args: FakeComputeArgs) -> anyhow::Result<()> {
    let fake = FakeCompute::start_on(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {}: {e}", args.listen))?;
    fake.set_address_base(args.address_base);
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "fake-compute: serving {}", fake.endpoint())?;
        stdout.flush()?;
    }
    portico_runtime::shutdown::signal().await;
    Ok(())
}

/// `maxResults` and `pageToken` from the query string (an unreadable `maxResults` counts as 0,
/// which the list refuses as the API does).
fn page(uri: &Uri) -> Page {
    let query: std::collections::HashMap<String, String> = axum::extract::Query::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default();
    Page {
        max_results: query.get("maxResults").map(|n| n.parse().unwrap_or(0)),
        token: query.get("pageToken").cloned(),
    }
}

fn respond(shared: &Mutex<Shared>, method: &Method, uri: &Uri, body: &[u8]) -> Response {
    let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
    let path = uri.path().to_owned();
    let throttled = shared.throttle > 0;
    shared.calls.push(Call {
        method: method.to_string(),
        path: path.clone(),
        throttled,
    });
    let (status, value) = if throttled {
        shared.throttle -= 1;
        error(429, "rateLimitExceeded", "Rate Limit Exceeded")
    } else {
        route(&mut shared.state, method, &path, &page(uri), body)
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json; charset=UTF-8")],
        value.to_string(),
    )
        .into_response()
}

fn route(state: &mut State, method: &Method, path: &str, page: &Page, body: &[u8]) -> Answer {
    let json = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    // Not Google's: where the lab cloud reports the health it measured.
    if let Some(pool) = path.strip_prefix("/lab/health/") {
        return match method.as_str() {
            "PUT" => state.report_health(pool, json()),
            _ => error(405, "invalid", "the lab's health report takes PUT"),
        };
    }
    let prefix = format!("/compute/v1/projects/{PROJECT}/");
    let Some(rest) = path.strip_prefix(&prefix) else {
        return error(404, "notFound", &format!("no such path {path}"));
    };
    let rest = match rest.strip_prefix(&format!("regions/{REGION}/")) {
        Some(rest) => rest,
        None => match rest.strip_prefix("global/") {
            Some(rest) => rest,
            None => return error(404, "notFound", &format!("no such path {path}")),
        },
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["operations", name]) => state.poll(name, false),
        ("POST", ["operations", name, "wait"]) => state.poll(name, true),
        ("GET", [collection]) => state.list(collection, page),
        ("POST", [collection]) => state.insert(collection, json()),
        ("GET", [collection, name]) => state.get(collection, name),
        ("DELETE", [collection, name]) => state.delete(collection, name),
        ("PUT", [collection, name]) => state.update(collection, name, json()),
        ("POST", ["targetPools", name, "getHealth"]) => state.pool_health(name, json()),
        ("POST", ["targetPools", name, action]) => state.pool_action(name, action, json()),
        _ => error(
            400,
            "invalid",
            &format!("{method} {path} is not served by the fake"),
        ),
    }
}
