//! The fake Compute server's state and rules: resources by collection and name, Operations that
//! go PENDING → RUNNING → DONE as they are polled, Google's error format, and the API's
//! referential rules (what is in use cannot be deleted).

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub const PROJECT: &str = "lab-project";
pub const REGION: &str = "us-central1";
pub const BASE: &str = "https://www.googleapis.com/compute/v1";

pub const REGIONAL: [&str; 3] = ["addresses", "targetPools", "forwardingRules"];
pub const GLOBAL: [&str; 2] = ["firewalls", "httpHealthChecks"];

/// External addresses come from TEST-NET-3 unless told otherwise.
pub const DEFAULT_ADDRESS_BASE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 0);

/// An HTTP answer: status and JSON body.
pub type Answer = (u16, Value);

/// Google's error body (`error.code`, `error.message`, `error.errors[].reason`).
pub fn error(status: u16, reason: &str, message: &str) -> Answer {
    (
        status,
        json!({"error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }}),
    )
}

fn kind(collection: &str) -> &'static str {
    match collection {
        "addresses" => "compute#address",
        "targetPools" => "compute#targetPool",
        "forwardingRules" => "compute#forwardingRule",
        "firewalls" => "compute#firewall",
        _ => "compute#httpHealthCheck",
    }
}

pub fn link(collection: &str, name: &str) -> String {
    if GLOBAL.contains(&collection) {
        format!("{BASE}/projects/{PROJECT}/global/{collection}/{name}")
    } else {
        format!("{BASE}/projects/{PROJECT}/regions/{REGION}/{collection}/{name}")
    }
}

fn ends_with_name(url: &Value, collection: &str, name: &str) -> bool {
    url.as_str()
        .is_some_and(|u| u.ends_with(&format!("/{collection}/{name}")))
}

/// The most items one list page holds (`maxResults`' default and cap).
const MAX_RESULTS: usize = 500;

/// A list request's paging parameters.
#[derive(Debug, Default)]
pub struct Page {
    pub max_results: Option<usize>,
    pub token: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub resources: BTreeMap<(String, String), Value>,
    /// Operation name → (the Operation, polls until DONE).
    operations: BTreeMap<String, (Value, u32)>,
    next_id: u64,
    next_ip: u32,
    /// (collection, error code): the next mutation on the collection fails in its Operation.
    pub operation_errors: Vec<(String, String)>,
    /// Where reserved external addresses are numbered from (`.1`, `.2`, ...); the lab cloud sets
    /// its load-balancer range so the addresses route through the cloud namespace.
    pub address_base: Option<std::net::Ipv4Addr>,
    /// Pool name → instance URL → `HEALTHY`/`UNHEALTHY`, as the lab cloud last reported it.
    pub health: BTreeMap<String, BTreeMap<String, String>>,
    /// At most this many items per list page (tests page with small numbers); None: 500.
    pub page_limit: Option<usize>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        1_000_000 + self.next_id
    }

    /// An Operation for a mutation of `collection/name`, PENDING (polled twice before DONE),
    /// or DONE at once with an `error`.
    fn operation(
        &mut self,
        kind: &str,
        collection: &str,
        name: &str,
        error: Option<&str>,
    ) -> Answer {
        let id = self.id();
        let op_name = format!("operation-{id}");
        let global = GLOBAL.contains(&collection);
        let self_link = if global {
            format!("{BASE}/projects/{PROJECT}/global/operations/{op_name}")
        } else {
            format!("{BASE}/projects/{PROJECT}/regions/{REGION}/operations/{op_name}")
        };
        let mut op = json!({
            "kind": "compute#operation",
            "id": id.to_string(),
            "name": op_name,
            "operationType": kind,
            "targetLink": link(collection, name),
            "status": "PENDING",
            "progress": 0,
            "insertTime": "2026-01-01T00:00:00.000-00:00",
            "selfLink": self_link,
            "user": "portico@lab-project.iam.gserviceaccount.com",
        });
        if !global {
            op["region"] = json!(format!("{BASE}/projects/{PROJECT}/regions/{REGION}"));
        }
        let polls = if let Some(code) = error {
            op["status"] = json!("DONE");
            op["progress"] = json!(100);
            op["error"] = json!({"errors": [{"code": code, "message": format!("injected {code} on {collection}/{name}")}]});
            op["httpErrorStatusCode"] = json!(400);
            0
        } else {
            2
        };
        self.operations.insert(op_name, (op.clone(), polls));
        (200, op)
    }

    pub fn poll(&mut self, name: &str, wait: bool) -> Answer {
        let Some((op, polls)) = self.operations.get_mut(name) else {
            return error(
                404,
                "notFound",
                &format!("The resource 'operations/{name}' was not found"),
            );
        };
        *polls = if wait { 0 } else { polls.saturating_sub(1) };
        op["status"] = json!(match *polls {
            0 => "DONE",
            1 => "RUNNING",
            _ => "PENDING",
        });
        if *polls == 0 {
            op["progress"] = json!(100);
        }
        (200, op.clone())
    }

    fn take_operation_error(&mut self, collection: &str) -> Option<String> {
        let i = self
            .operation_errors
            .iter()
            .position(|(c, _)| c == collection)?;
        Some(self.operation_errors.remove(i).1)
    }

    pub(crate) fn not_found(collection: &str, name: &str) -> Answer {
        let path = link(collection, name).replace(&format!("{BASE}/"), "");
        error(
            404,
            "notFound",
            &format!("The resource '{path}' was not found"),
        )
    }

    pub fn get(&self, collection: &str, name: &str) -> Answer {
        match self
            .resources
            .get(&(collection.to_owned(), name.to_owned()))
        {
            Some(value) => (200, value.clone()),
            None => Self::not_found(collection, name),
        }
    }

    /// One page of `collection`, in name order: at most `page.max_results` items (the API's
    /// default and cap is 500; `page_limit` lowers the cap, as the real server may return fewer
    /// than asked), from after `page.token`, with `nextPageToken` while more remain.
    pub fn list(&self, collection: &str, page: &Page) -> Answer {
        if page.max_results == Some(0) || page.max_results.is_some_and(|n| n > MAX_RESULTS) {
            return error(
                400,
                "invalid",
                &format!(
                    "Invalid value for field 'maxResults': must be between 0 and {MAX_RESULTS}"
                ),
            );
        }
        let size = page
            .max_results
            .unwrap_or(MAX_RESULTS)
            .min(self.page_limit.unwrap_or(MAX_RESULTS));
        let mut names = self
            .resources
            .iter()
            .filter(|((c, name), _)| {
                c == collection
                    && page
                        .token
                        .as_deref()
                        .is_none_or(|after| name.as_str() > after)
            })
            .map(|((_, name), value)| (name, value));
        let items: Vec<Value> = names.by_ref().take(size).map(|(_, v)| v.clone()).collect();
        let list_link = link(collection, "").trim_end_matches('/').to_owned();
        let mut list = json!({"kind": format!("{}List", kind(collection)), "id": list_link, "items": items, "selfLink": list_link});
        if names.next().is_some() {
            // Opaque to clients: the name the next page starts after.
            let last = list["items"][size - 1]["name"].clone();
            list["nextPageToken"] = last;
        }
        (200, list)
    }

    /// What refers to `collection/name` (the API refuses the delete while anything does).
    fn users(&self, collection: &str, name: &str, value: &Value) -> Vec<String> {
        self.resources
            .values()
            .filter(|other| match collection {
                "targetPools" => ends_with_name(&other["target"], "targetPools", name),
                "httpHealthChecks" => other["healthChecks"].as_array().is_some_and(|hcs| {
                    hcs.iter()
                        .any(|hc| ends_with_name(hc, "httpHealthChecks", name))
                }),
                "addresses" => {
                    other["kind"] == "compute#forwardingRule"
                        && other["IPAddress"] == value["address"]
                }
                _ => false,
            })
            .filter_map(|other| other["selfLink"].as_str().map(String::from))
            .collect()
    }

    pub fn insert(&mut self, collection: &str, mut body: Value) -> Answer {
        let Some(name) = body["name"].as_str().map(String::from) else {
            return error(
                400,
                "required",
                "Required field 'resource.name' not specified",
            );
        };
        let key = (collection.to_owned(), name.clone());
        if self.resources.contains_key(&key) {
            let path = link(collection, &name).replace(&format!("{BASE}/"), "");
            return error(
                409,
                "alreadyExists",
                &format!("The resource '{path}' already exists"),
            );
        }
        // References must exist, as on GCP.
        let refs: Vec<(&str, Value)> = match collection {
            "targetPools" => body["healthChecks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|v| ("httpHealthChecks", v))
                .collect(),
            "forwardingRules" => vec![("targetPools", body["target"].clone())],
            _ => vec![],
        };
        for (to, url) in refs {
            let target = url
                .as_str()
                .and_then(|u| u.rsplit('/').next())
                .unwrap_or("");
            if !self
                .resources
                .contains_key(&(to.to_owned(), target.to_owned()))
            {
                return error(
                    404,
                    "notFound",
                    &format!("The resource '{to}/{target}' was not found"),
                );
            }
        }
        if let Some(code) = self.take_operation_error(collection) {
            return self.operation("insert", collection, &name, Some(&code));
        }
        let id = self.id();
        body["id"] = json!(id.to_string());
        body["kind"] = json!(kind(collection));
        body["selfLink"] = json!(link(collection, &name));
        body["creationTimestamp"] = json!("2026-01-01T00:00:00.000-00:00");
        if REGIONAL.contains(&collection) {
            body["region"] = json!(format!("{BASE}/projects/{PROJECT}/regions/{REGION}"));
        }
        match collection {
            "addresses" => {
                if body["address"].is_null() {
                    self.next_ip += 1;
                    let base = u32::from(self.address_base.unwrap_or(DEFAULT_ADDRESS_BASE));
                    let address = std::net::Ipv4Addr::from(base + self.next_ip);
                    body["address"] = json!(address.to_string());
                }
                body["status"] = json!("RESERVED");
                body["addressType"] = json!("EXTERNAL");
            }
            "targetPools" if body["sessionAffinity"].is_null() => {
                body["sessionAffinity"] = json!("NONE");
            }
            _ => {}
        }
        self.resources.insert(key, body);
        self.operation("insert", collection, &name, None)
    }

    pub fn delete(&mut self, collection: &str, name: &str) -> Answer {
        let key = (collection.to_owned(), name.to_owned());
        let Some(value) = self.resources.get(&key).cloned() else {
            return Self::not_found(collection, name);
        };
        let users = self.users(collection, name, &value);
        if !users.is_empty() {
            let path = link(collection, name).replace(&format!("{BASE}/"), "");
            return error(
                400,
                "resourceInUseByAnotherResource",
                &format!(
                    "The {collection} resource '{path}' is already being used by '{}'",
                    users.join("', '")
                ),
            );
        }
        if let Some(code) = self.take_operation_error(collection) {
            return self.operation("delete", collection, name, Some(&code));
        }
        self.resources.remove(&key);
        self.operation("delete", collection, name, None)
    }

    /// PUT (update): the body replaces the resource, keeping what the server owns.
    pub fn update(&mut self, collection: &str, name: &str, mut body: Value) -> Answer {
        let key = (collection.to_owned(), name.to_owned());
        let Some(old) = self.resources.get(&key).cloned() else {
            return Self::not_found(collection, name);
        };
        if let Some(code) = self.take_operation_error(collection) {
            return self.operation("update", collection, name, Some(&code));
        }
        for field in ["id", "kind", "selfLink", "creationTimestamp", "name"] {
            body[field] = old[field].clone();
        }
        self.resources.insert(key, body);
        self.operation("update", collection, name, None)
    }

    /// targetPools/{name}/{addInstance,removeInstance,addHealthCheck,removeHealthCheck}.
    pub fn pool_action(&mut self, name: &str, action: &str, body: Value) -> Answer {
        let key = ("targetPools".to_owned(), name.to_owned());
        let Some(mut pool) = self.resources.get(&key).cloned() else {
            return Self::not_found("targetPools", name);
        };
        let (field, item) = match action {
            "addInstance" | "removeInstance" => ("instances", "instance"),
            "addHealthCheck" | "removeHealthCheck" => ("healthChecks", "healthCheck"),
            _ => return error(400, "invalid", &format!("unknown action {action}")),
        };
        let given: Vec<String> = body[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r[item].as_str().map(String::from))
            .collect();
        let mut current: Vec<String> = pool[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        if action == "addHealthCheck" {
            if current.len() + given.len() > 1 {
                return error(
                    400,
                    "invalid",
                    "A target pool can have at most one health check",
                );
            }
            for hc in &given {
                let hc_name = hc.rsplit('/').next().unwrap_or("");
                if !self
                    .resources
                    .contains_key(&("httpHealthChecks".to_owned(), hc_name.to_owned()))
                {
                    return error(
                        404,
                        "notFound",
                        &format!("The resource 'httpHealthChecks/{hc_name}' was not found"),
                    );
                }
            }
        }
        if let Some(code) = self.take_operation_error("targetPools") {
            return self.operation(action, "targetPools", name, Some(&code));
        }
        if action.starts_with("add") {
            for url in given {
                if !current.contains(&url) {
                    current.push(url);
                }
            }
        } else {
            current.retain(|url| !given.contains(url));
        }
        pool[field] = json!(current);
        self.resources.insert(key, pool);
        self.operation(action, "targetPools", name, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &Value) -> Vec<&str> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn lists_page_by_max_results_and_the_page_limit_following_next_page_token() {
        let mut state = State::default();
        for name in ["c", "a", "b"] {
            assert_eq!(state.insert("firewalls", json!({"name": name})).0, 200);
        }
        let (status, all) = state.list("firewalls", &Page::default());
        assert_eq!((status, names(&all)), (200, vec!["a", "b", "c"]));
        assert!(all.get("nextPageToken").is_none(), "{all}");

        let first = state
            .list(
                "firewalls",
                &Page {
                    max_results: Some(2),
                    token: None,
                },
            )
            .1;
        assert_eq!(names(&first), ["a", "b"]);
        let token = first["nextPageToken"].as_str().unwrap().to_owned();
        let second = state
            .list(
                "firewalls",
                &Page {
                    max_results: Some(2),
                    token: Some(token),
                },
            )
            .1;
        assert_eq!(names(&second), ["c"]);
        assert!(second.get("nextPageToken").is_none(), "{second}");

        // The server may return fewer than asked: the limit wins over maxResults.
        state.page_limit = Some(1);
        let limited = state
            .list(
                "firewalls",
                &Page {
                    max_results: Some(500),
                    token: None,
                },
            )
            .1;
        assert_eq!(names(&limited), ["a"]);
        assert_eq!(limited["nextPageToken"], "a");

        for bad in [0, 501] {
            let page = Page {
                max_results: Some(bad),
                token: None,
            };
            assert_eq!(state.list("firewalls", &page).0, 400, "maxResults {bad}");
        }
    }
}
