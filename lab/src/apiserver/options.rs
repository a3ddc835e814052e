//! The query options of writes and of lists and watches, checked as `ValidateCreateOptions`
//! and friends and `ValidateListOptions` check them before anything is read or written, and the
//! answers about resourceVersions a read cannot be served at.
//!
//! ```text
//!   write  dryRun only All; fieldManager short and printable (required for apply);
//!          force only for apply; fieldValidation Ignore, Warn (default) or Strict
//! ```
//! ```text
//!   list   resourceVersionMatch needs a resourceVersion, not with continue, Exact not with "0";
//!          no sendInitialEvents
//!   watch  sendInitialEvents needs resourceVersionMatch=NotOlderThan and allowWatchBookmarks;
//!          resourceVersionMatch needs sendInitialEvents
//!   both   a resourceVersion newer than the store's answers 504 "Too large resource version"
//! ```

use serde_json::json;

use super::cluster::{FieldValidation, WriteContext};
use super::status::{ApiError, FieldError};

/// The options a write carries, as sent.
#[derive(Debug, Default)]
pub struct WriteOptions<'a> {
    pub dry_run: Option<&'a str>,
    pub field_manager: Option<&'a str>,
    pub field_validation: Option<&'a str>,
    pub force: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl WriteOptions<'_> {
    /// The write's context, or 422 naming the option (`kind` is `CreateOptions`, ...). Without
    /// a `fieldManager`, the user agent's first word manages the fields, as the API server
    /// derives it.
    pub fn check(&self, kind: &str) -> Result<WriteContext, ApiError> {
        let mut errors = Vec::new();
        let dry_run = match self.dry_run {
            None => false,
            Some("All") => true,
            Some(other) => {
                errors.push(FieldError {
                    field: "dryRun".into(),
                    reason: "FieldValueNotSupported",
                    detail: format!(
                        "Unsupported value: []string{{{other:?}}}: supported values: \"All\""
                    ),
                });
                false
            }
        };
        let manager = match self.field_manager {
            Some(m) => {
                errors.extend(validate_field_manager(m));
                m.to_string()
            }
            None => self
                .user_agent
                .map(|ua| ua.split('/').next().unwrap_or_default().to_string())
                .unwrap_or_else(|| "unknown".into()),
        };
        if !errors.is_empty() {
            return Err(ApiError::invalid(kind, "meta.k8s.io", "", &errors));
        }
        Ok(WriteContext {
            manager,
            force: matches!(self.force, Some("true" | "1")),
            dry_run,
            field_validation: FieldValidation::parse(self.field_validation)?,
            warnings: Default::default(),
        })
    }

    /// `PatchOptions` rules that depend on the patch type: apply needs a `fieldManager`, and
    /// only apply takes `force`.
    pub fn check_patch(&self, apply: bool) -> Result<(), ApiError> {
        let error = if apply && self.field_manager.unwrap_or_default().is_empty() {
            FieldError::required("fieldManager", "is required for apply patch")
        } else if !apply && self.force.is_some() {
            FieldError::forbidden("force", "may not be specified for non-apply patch")
        } else {
            return Ok(());
        };
        Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[error],
        ))
    }
}

/// `ValidateFieldManager`: at most 128 printable characters.
fn validate_field_manager(manager: &str) -> Vec<FieldError> {
    if manager.chars().count() > 128 {
        return vec![FieldError {
            field: "fieldManager".into(),
            reason: "FieldValueTooLong",
            detail: "Too long: may not be more than 128 bytes".into(),
        }];
    }
    if manager.chars().any(|c| c.is_control()) {
        return vec![FieldError::invalid(
            "fieldManager",
            format!("{manager:?}"),
            "must only contain printable characters",
        )];
    }
    Vec::new()
}

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
    fn write_options_take_only_what_the_real_server_takes() {
        let bogus = WriteOptions {
            dry_run: Some("all"),
            ..Default::default()
        };
        let error = bogus.check("CreateOptions").unwrap_err();
        assert_eq!(error.details.unwrap()["causes"][0]["field"], "dryRun");
        let from_agent = WriteOptions {
            user_agent: Some("kubectl/v1.32.0 (linux/amd64)"),
            ..Default::default()
        };
        assert_eq!(
            from_agent.check("CreateOptions").unwrap().manager,
            "kubectl"
        );
        assert!(WriteOptions::default().check_patch(true).is_err());
        let forced = WriteOptions {
            force: Some("true"),
            ..Default::default()
        };
        assert!(forced.check_patch(false).is_err());
        assert!(forced.check_patch(true).is_err());
        let apply = WriteOptions {
            force: Some("true"),
            field_manager: Some("me"),
            ..Default::default()
        };
        assert!(apply.check_patch(true).is_ok());
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
