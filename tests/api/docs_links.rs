//! The documentation's links hold: every relative link in the Markdown pages (`README.md` and
//! the other pages at the top of the repository, and every page of `docs/`) names a file that
//! exists, and its `#anchor` names a heading of that file (GitHub's slugs); every documentation
//! path the code, tests, scripts and settings cite (a `docs/` path, with or without an anchor)
//! exists as well. Needs no services.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown pages: `*.md` at the top of the repository and in the documentation folder.
fn markdown_pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    for dir in [repo(), repo().join("docs")] {
        for entry in std::fs::read_dir(&dir).expect("a readable folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_file() && path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// The page's lines with fenced code blocks blanked (kept as empty lines, so line numbers hold).
fn without_code_blocks(text: &str) -> Vec<String> {
    let mut fence: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match (fence, marker) {
            (None, Some(c)) if run >= 3 && indent <= 3 => {
                fence = Some((c, run));
                lines.push(String::new());
            }
            (Some((c, n)), Some(m)) if m == c && run >= n && trimmed.trim_end().len() == run => {
                fence = None;
                lines.push(String::new());
            }
            (Some(_), _) => lines.push(String::new()),
            (None, _) => lines.push(line.to_owned()),
        }
    }
    lines
}

/// The line with its inline code spans (`` `...` ``) blanked, so a link shown as code is not one.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(' ');
        } else if in_code {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// GitHub's anchor for a heading: lowercase, markup and punctuation dropped (but `-` and `_`),
/// each space a `-`.
fn slug(heading: &str) -> String {
    let mut out = String::new();
    for c in heading.trim().chars() {
        if c == ' ' {
            out.push('-');
        } else if c.is_alphanumeric() || c == '-' || c == '_' {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Every anchor of a page: its headings' slugs, a repeated one numbered as GitHub does (`-1`, ...).
fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    let mut found = BTreeSet::new();
    for line in without_code_blocks(&text) {
        let level = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&level) || !line[level..].starts_with(' ') {
            continue;
        }
        let title = line[level..].trim().trim_end_matches('#').trim();
        let base = slug(title);
        let mut anchor = base.clone();
        let mut n = 0;
        while found.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        found.insert(anchor);
    }
    found
}

/// The `[text](target)` and `![alt](target)` links of a page, with their line numbers. A link's
/// text may wrap onto the next line.
fn links(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<String> = without_code_blocks(text)
        .iter()
        .map(|l| without_code_spans(l))
        .collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            found.push((index + 1, target.trim_matches(['<', '>']).to_owned()));
            rest = &after[end..];
        }
    }
    found
}

/// Why `target`, cited from `from` (a file), does not resolve, if it does not.
fn broken(from: &Path, target: &str) -> Option<String> {
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        from.to_path_buf()
    } else {
        from.parent().expect("a file has a folder").join(path)
    };
    if !file.exists() {
        return Some(format!("{} does not exist", shown(&file)));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|e| e != "md") {
        return Some(format!(
            "an anchor into {}, which is not a Markdown page",
            shown(&file)
        ));
    }
    let known = anchors(&file);
    if known.contains(anchor) {
        None
    } else {
        Some(format!(
            "no heading of {} has the anchor `#{anchor}` (its anchors: {})",
            shown(&file),
            known.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// A path as the repository names it.
fn shown(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in path.strip_prefix(repo()).unwrap_or(path).components() {
        match part {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[test]
fn every_relative_link_of_the_documentation_resolves() {
    let pages = markdown_pages();
    assert!(
        pages.iter().any(|p| p.ends_with("README.md")),
        "README.md is found"
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a readable page");
        for (line, target) in links(&text) {
            let external = ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| target.starts_with(scheme));
            if external || target.is_empty() {
                continue;
            }
            checked += 1;
            if let Some(why) = broken(page, &target) {
                failures.push(format!("{}:{line}: link `{target}`: {why}", shown(page)));
            }
        }
    }
    assert!(checked > 0, "no relative link found: the parser is broken");
    assert!(
        failures.is_empty(),
        "{} broken documentation link(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The documentation paths cited in a text: `docs/<name>.md` or `.png`, with an optional anchor.
fn cited_doc_paths(text: &str) -> Vec<(usize, String)> {
    let prefix = concat!("docs", "/");
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find(prefix) {
            let preceded = rest[..at].chars().next_back();
            let cited: String = rest[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || "_-./#".contains(*c))
                .collect();
            rest = &rest[at + prefix.len()..];
            // `foo/docs/...` is another folder; a bare `docs/` is the folder itself.
            if preceded.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_') {
                continue;
            }
            let cited = cited.trim_end_matches(['.', '#']).to_owned();
            let path = cited.split('#').next().unwrap_or("");
            if path.ends_with(".md") || path.ends_with(".png") {
                found.push((index + 1, cited));
            }
        }
    }
    found
}

#[test]
fn every_documentation_path_cited_in_the_code_exists() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = ["src", "tests", "scripts", "nats", "migrations", ".ci"]
        .iter()
        .map(|d| repo().join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for (line, cited) in cited_doc_paths(&text) {
                checked += 1;
                let root_file = repo().join("README.md");
                if let Some(why) = broken(&root_file, &cited) {
                    failures.push(format!("{}:{line}: cites `{cited}`: {why}", shown(&path)));
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no documentation path cited in the code: the scan is broken"
    );
    assert!(
        failures.is_empty(),
        "{} documentation path(s) cited in the code do not resolve:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("The Stage API"), "the-stage-api");
    assert_eq!(slug("`onair bench`"), "onair-bench");
    assert_eq!(
        slug("WebSocket floods and message size (`/primus` and `/ws`)"),
        "websocket-floods-and-message-size-primus-and-ws"
    );
    assert_eq!(
        slug("The chat peer: actionhero 29 + Redis, side by side"),
        "the-chat-peer-actionhero-29--redis-side-by-side"
    );
    assert_eq!(
        slug("How a room's messages reach its sockets"),
        "how-a-rooms-messages-reach-its-sockets"
    );
    let text = "see [a](x.md#y) and `[not](a link)`\n```\n[no](z.md)\n```\n![img](p.png)";
    let targets: Vec<String> = links(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(targets, ["x.md#y", "p.png"]);
}
