//! The repository explains itself: every `docs/<page>.md#<anchor>` that a source file, manifest
//! or page cites exists, no file cites a contract outside the repository, and every repository
//! file or directory that a page of `docs/` names in backticks exists.

use std::{collections::BTreeSet, path::Path};

use crate::support::{self, repo};

/// The files git tracks, without the committed experiment results (data, not prose).
fn tracked_files() -> Vec<String> {
    support::tracked_files()
        .into_iter()
        .filter(|path| !path.starts_with("results/"))
        .collect()
}

/// GitHub's anchor of a Markdown heading: lowercase, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page: its headings' and its explicit `<a id="...">`s.
fn anchors(page: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut in_code = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code && line.starts_with('#') {
            anchors.insert(anchor(line.trim_start_matches('#')));
        }
        for (index, _) in line.match_indices("<a id=\"") {
            let rest = &line[index + 7..];
            if let Some(end) = rest.find('"') {
                anchors.insert(rest[..end].to_owned());
            }
        }
    }
    anchors
}

/// Every `docs/<page>.md` or `docs/<page>.md#<anchor>` cited in `text`.
fn citations(text: &str) -> Vec<(String, Option<String>)> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut found = Vec::new();
    for (index, _) in text.match_indices("docs/") {
        let rest = &text[index + 5..];
        let name_len = rest.find(|c| !name_char(c)).unwrap_or(rest.len());
        let Some(after) = rest[name_len..].strip_prefix(".md") else {
            continue;
        };
        let page = format!("{}.md", &rest[..name_len]);
        let anchor = after.strip_prefix('#').map(|after| {
            let len = after.find(|c| !name_char(c)).unwrap_or(after.len());
            after[..len].to_owned()
        });
        found.push((page, anchor));
    }
    found
}

#[test]
fn every_cited_docs_page_and_anchor_exists() {
    let root = repo();
    let mut broken = Vec::new();
    let mut cited = 0;
    for file in tracked_files() {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        for (page, anchor) in citations(&text) {
            cited += 1;
            let Ok(target) = std::fs::read_to_string(root.join("docs").join(&page)) else {
                broken.push(format!("{file}: docs/{page} does not exist"));
                continue;
            };
            if let Some(anchor) = anchor
                && !anchors(&target).contains(&anchor)
            {
                broken.push(format!("{file}: docs/{page} has no #{anchor}"));
            }
        }
    }
    assert!(cited > 100, "only {cited} citations of docs/ found");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn nothing_cites_a_contract_outside_the_repository() {
    let root = repo();
    // Built from pieces, so that this file does not cite what it looks for.
    let mut outside: Vec<String> = ["A", "B", "C", "D"]
        .iter()
        .map(|section| format!("{} {section}", "SPEC"))
        .collect();
    outside.extend([format!("../{}", "shared"), format!("{}.md", "STYLE")]);
    let mut found = Vec::new();
    for file in tracked_files() {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            if outside.iter().any(|needle| line.contains(needle)) {
                found.push(format!("{file}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn every_repository_path_a_docs_page_names_exists() {
    let root = repo();
    let tops = [
        "crates/",
        "sharder/",
        "webhosting-operator/",
        "loadgen/",
        "deploy/",
        "hack/",
        "experiments/",
        "dashboards/",
        "config/",
        "docs/",
    ];
    let mut missing = Vec::new();
    for file in tracked_files() {
        if !(file.starts_with("docs/") && Path::new(&file).extension().is_some_and(|e| e == "md")) {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&file)).expect("a docs page");
        for span in text.split('`').skip(1).step_by(2) {
            let path = span.split(['#', ':']).next().unwrap_or_default();
            let literal = !path.contains(|c: char| c.is_whitespace() || "<>*{}$".contains(c));
            // A file has an extension, a directory a trailing slash; `namespace/name` is neither.
            let last = path.rsplit('/').next().unwrap_or_default();
            let named = path.ends_with('/') || last.contains('.');
            // The manifests' page names them relative to `deploy/`.
            let exists = root.join(path).exists() || root.join("deploy").join(path).exists();
            if literal && named && tops.iter().any(|top| path.starts_with(top)) && !exists {
                missing.push(format!("{file}: `{span}`"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        anchor(" The webhosting-operator API"),
        "the-webhosting-operator-api"
    );
    assert_eq!(
        anchor(" The original's evaluation"),
        "the-originals-evaluation"
    );
    assert_eq!(anchor(" Modules (`loadgen/src/`)"), "modules-loadgensrc");
    assert_eq!(
        citations("see docs/contract.md#lease-states, and docs/kind.md."),
        [
            ("contract.md".to_owned(), Some("lease-states".to_owned())),
            ("kind.md".to_owned(), None)
        ]
    );
}
