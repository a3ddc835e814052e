//! The query options of lists and watches, checked as `ValidateListOptions` checks them
//! before anything is read, and the answers about resourceVersions a read cannot be served at.
//!
//! ```text
//!   list   resourceVersionMatch needs a resourceVersion, not with continue, Exact not with "0";
//!          no sendInitialEvents
//!   watch  sendInitialEvents needs resourceVersionMatch=NotOlderThan and allowWatchBookmarks;
//!          resourceVersionMatch needs sendInitialEvents
//!   both   a resourceVersion newer than the store's answers 504 "Too large resource version"
//! ```

use serde_json::json;

use super::status::{ApiError, FieldError};

/// The options a list or watch request carries, as sent.
#[derive(Debug, Default)]
pub struct ListOptions<'a> {
    pub watch: bool,
    pub resource_version: Option<&'a str>,
    pub resource_version_match: Option<&'a str>,
    pub send_initial_events: Option<&'a str>,
    pub allow_watch_bookmarks: bool,
    pub continue_token: Option<&'a str>,
}

/// A list or watch request's checked options.
#[derive(Debug, PartialEq)]
pub struct ReadAt {
    /// The resourceVersion asked for; `None` for unset or "0" (any).
    pub resource_version: Option<u64>,
    /// `resourceVersionMatch=Exact`: the list as it was at that revision.
    pub exact: bool,
    pub send_initial_events: Option<bool>,
}

fn forbidden(field: &str, why: &str) -> FieldError {
    FieldError::forbidden(field, why)
}

fn not_supported(value: &str, supported: &[&str]) -> FieldError {
    let listed: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        field: "resourceVersionMatch".into(),
        reason: "FieldValueNotSupported",
        detail: format!(
            "Unsupported value: {value:?}: supported values: {}",
            listed.join(", ")
        ),
    }
}

impl ListOptions<'_> {
    pub fn check(&self) -> Result<ReadAt, ApiError> {
        let send_initial_events = match self.send_initial_events {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "sendInitialEvents: invalid value {other:?}: must be true or false"
                )));
            }
        };
        let rv = self.resource_version.unwrap_or_default();
        let matching = self.resource_version_match.unwrap_or_default();
        let has_continue = self.continue_token.is_some_and(|c| !c.is_empty());
        let mut errors = Vec::new();
        if self.watch {
            if send_initial_events.is_some() {
                if matching != "NotOlderThan" {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    ));
                }
                if !self.allow_watch_bookmarks {
                    errors.push(forbidden(
                        "allowWatchBookmarks",
                        "sendInitialEvents requires setting allowWatchBookmarks to true",
                    ));
                }
            }
            if !matching.is_empty() {
                if send_initial_events.is_none() {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if matching != "NotOlderThan" {
                    errors.push(not_supported(matching, &["NotOlderThan"]));
                }
                if has_continue {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        } else {
            if !matching.is_empty() {
                if rv.is_empty() {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if has_continue {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if matching != "Exact" && matching != "NotOlderThan" {
                    errors.push(not_supported(matching, &["Exact", "NotOlderThan", ""]));
                }
                if matching == "Exact" && rv == "0" {
                    errors.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
            if send_initial_events.is_some() {
                errors.push(forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for list",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", &errors));
        }
        let resource_version =
            match rv {
                "" | "0" => None,
                rv => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })?),
            };
        Ok(ReadAt {
            resource_version,
            exact: matching == "Exact",
            send_initial_events,
        })
    }
}

/// A read at a revision the store has not reached: the watch cache waits a moment for it, then
/// answers 504 with a cause clients recognise (client-go retries after `retryAfterSeconds`).
pub fn too_large(asked: u64, current: u64) -> ApiError {
    ApiError {
        details: Some(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        })),
        ..ApiError::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {asked}, current: {current}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(options: ListOptions) -> Vec<String> {
        let error = options.check().expect_err("refused");
        error.details.unwrap()["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_streaming_list_needs_not_older_than_and_bookmarks() {
        let bare = ListOptions {
            watch: true,
            send_initial_events: Some("true"),
            ..Default::default()
        };
        assert_eq!(
            fields(bare),
            ["resourceVersionMatch", "allowWatchBookmarks"]
        );
        let complete = ListOptions {
            watch: true,
            send_initial_events: Some("true"),
            resource_version_match: Some("NotOlderThan"),
            allow_watch_bookmarks: true,
            ..Default::default()
        };
        assert_eq!(complete.check().unwrap().send_initial_events, Some(true));
    }

    #[test]
    fn an_exact_list_needs_a_resource_version_other_than_zero() {
        let none = ListOptions {
            resource_version_match: Some("Exact"),
            ..Default::default()
        };
        assert_eq!(fields(none), ["resourceVersionMatch"]);
        let zero = ListOptions {
            resource_version: Some("0"),
            resource_version_match: Some("Exact"),
            ..Default::default()
        };
        assert_eq!(fields(zero), ["resourceVersionMatch"]);
        let exact = ListOptions {
            resource_version: Some("42"),
            resource_version_match: Some("Exact"),
            ..Default::default()
        };
        assert_eq!(
            exact.check().unwrap(),
            ReadAt {
                resource_version: Some(42),
                exact: true,
                send_initial_events: None
            }
        );
    }

    #[test]
    fn send_initial_events_is_for_watches_only() {
        let list = ListOptions {
            send_initial_events: Some("true"),
            ..Default::default()
        };
        assert_eq!(fields(list), ["sendInitialEvents"]);
    }
}
