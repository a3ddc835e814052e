//! What cannot run here is at least linted by the tools the field uses: the Dockerfile with
//! hadolint, the release workflow with actionlint (which also runs shellcheck on its `run:`
//! steps), the scripts with shellcheck. Each linter is first shown to reject a broken file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use portico_tests::{repo_root, tool};

/// One `FROM ... AS <name>` stage of the Dockerfile, with its instructions read.
#[derive(Debug, Default)]
pub struct Stage {
    pub from: String,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub run: Vec<String>,
}

/// Splits on blanks outside double quotes and drops the quotes (LABEL's `k="v w"` syntax).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The stage named `name` of the root Dockerfile (continuation lines joined, comments dropped).
pub fn dockerfile_stage(name: &str) -> Stage {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let mut instructions: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                instructions.push(std::mem::take(&mut pending));
            }
        }
    }
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    let mut current: Option<String> = None;
    for instruction in instructions {
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction.as_str(), ""));
        let rest = rest.trim();
        if keyword == "FROM" {
            let parts = words(rest);
            let stage_name = match parts.as_slice() {
                [.., as_kw, stage] if as_kw.eq_ignore_ascii_case("AS") => stage.clone(),
                _ => String::new(),
            };
            let from = parts
                .iter()
                .find(|p| !p.starts_with("--"))
                .cloned()
                .unwrap_or_default();
            stages.insert(
                stage_name.clone(),
                Stage {
                    from,
                    ..Stage::default()
                },
            );
            current = Some(stage_name);
            continue;
        }
        let Some(stage) = current.as_ref().and_then(|c| stages.get_mut(c)) else {
            continue;
        };
        match keyword {
            "LABEL" => {
                for pair in words(rest) {
                    let (k, v) = pair.split_once('=').expect("LABEL key=value");
                    stage.labels.insert(k.to_owned(), v.to_owned());
                }
            }
            "USER" => stage.user = Some(rest.to_owned()),
            "ENTRYPOINT" => {
                stage.entrypoint =
                    serde_json::from_str(rest).expect("ENTRYPOINT in exec (JSON) form")
            }
            "RUN" => stage.run.push(rest.to_owned()),
            _ => {}
        }
    }
    stages
        .remove(name)
        .unwrap_or_else(|| panic!("the Dockerfile has no stage {name}"))
}

fn lint(linter: &Path, args: &[&str], file: &Path) -> (bool, String) {
    let output = Command::new(linter).args(args).arg(file).output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// Lints `file`, and a copy of it with `breakage` applied, which the linter must reject
/// (a linter that accepted anything would prove nothing).
fn lint_file_and_a_broken_copy(linter: &str, args: &[&str], file: &str, breakage: (&str, &str)) {
    let Some(linter) = tool(linter) else { return };
    let path = repo_root().join(file);
    let (clean, report) = lint(&linter, args, &path);
    assert!(clean, "{file}:\n{report}");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen(breakage.0, breakage.1, 1);
    assert_ne!(broken, text, "the breakage applies to {file}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(Path::new(file).file_name().unwrap());
    std::fs::write(&copy, broken).unwrap();
    let (clean, report) = lint(&linter, args, &copy);
    assert!(!clean, "the linter accepted a broken {file}:\n{report}");
}

#[test]
fn the_dockerfile_passes_hadolint() {
    lint_file_and_a_broken_copy(
        "hadolint",
        &[],
        "Dockerfile",
        // An unpinned apt-get install without an ignore reason (DL3008).
        (
            "# hadolint ignore=DL3008\nRUN apt-get update",
            "RUN apt-get update",
        ),
    );
}

#[test]
fn the_release_workflow_passes_actionlint() {
    lint_file_and_a_broken_copy(
        "actionlint",
        &["-no-color"],
        ".github/workflows/release.yml",
        ("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"),
    );
}

#[test]
fn the_scripts_pass_shellcheck() {
    for script in [
        "scripts/images",
        "scripts/test",
        "scripts/install",
        "scripts/lab-up",
        "scripts/demo",
        ".ci/run",
    ] {
        let Some(shellcheck) = tool("shellcheck") else {
            return;
        };
        let (clean, report) = lint(&shellcheck, &[], &repo_root().join(script));
        assert!(clean, "{script}:\n{report}");
    }
    lint_file_and_a_broken_copy(
        "shellcheck",
        &[],
        "scripts/images",
        ("\"$binaries/$binary\"", "$binaries/$binary"),
    );
}

#[test]
fn the_release_workflow_builds_both_images_for_two_architectures_on_a_version_tag() {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let workflow: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(workflow["on"]["push"]["tags"], serde_json::json!(["v*"]));
    let images = &workflow["jobs"]["images"];
    assert_eq!(
        images["strategy"]["matrix"]["image"],
        serde_json::json!(["portico-controller", "portico-agent"])
    );
    let build = images["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|uses| uses.starts_with("docker/build-push-action@"))
        })
        .expect("a build-push step");
    let platforms = build["with"]["platforms"].as_str().unwrap();
    assert!(platforms.contains("linux/amd64") && platforms.contains("linux/arm64"));
    assert_eq!(build["with"]["target"], "${{ matrix.image }}");
    // Each matrix entry is a Dockerfile stage.
    for name in ["portico-controller", "portico-agent"] {
        dockerfile_stage(name);
    }
    let manifests = serde_json::to_string(&workflow["jobs"]["manifests"]).unwrap();
    assert!(manifests.contains("kubectl kustomize"));
    assert!(manifests.contains("gh release"));
}
