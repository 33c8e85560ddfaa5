//! The layout's rules, read from the source itself (ARCHITECTURE.md):
//! - no file imports another in a circle (edges are `crate::`, `super::` and `self::` paths);
//! - the edges (`http/`, `chat/`, `stats_socket.rs`) run no SQL and build no event;
//! - the pure domain does no I/O;
//! - imports run down the layers of [`LAYERS`], and keep the folder rules of [`rule_broken`]
//!   (only the imports of [`ALLOWED`] break them);
//! - no file in `src/` is over 600 lines, its unit tests aside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a file of `src/` may be, not counting its `#[cfg(test)] mod tests`.
const MAX_LINES: usize = 600;

/// One Rust file of `src/`: its module path (`["http", "gateway"]`) and its text without the
/// unit tests.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    is_mod_file: bool,
    code: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap();
                let mut module: Vec<String> = relative
                    .with_extension("")
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                let last = module.last().cloned().unwrap_or_default();
                let is_mod_file = matches!(last.as_str(), "mod" | "lib" | "main");
                if is_mod_file {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                files.push(SourceFile {
                    path: relative.to_path_buf(),
                    module,
                    is_mod_file,
                    code: without_unit_tests(&text),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// The text before the file's `#[cfg(test)]` test module (which stands last, by convention).
fn without_unit_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// Every path the code names that starts with `crate::`, `super::` or `self::`, made absolute
/// (a list of segments), including those inside `use` groups (`use crate::a::{b, c::d}`).
fn named_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let code: String = file
        .code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(start) {
            let at = from + found;
            from = at + start.len();
            let preceded_by_ident = at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':');
            if preceded_by_ident {
                continue;
            }
            let base = match start {
                "crate::" => Vec::new(),
                "self::" => file.module.clone(),
                _ => {
                    // `super` of `a/b.rs` is `a`; of `a/mod.rs` (module `a`) it is the root.
                    let mut m = file.module.clone();
                    m.pop();
                    m
                }
            };
            for tail in expand(&code[from..]) {
                let mut full = base.clone();
                let mut segments = tail.into_iter();
                for segment in segments.by_ref() {
                    if segment == "super" {
                        full.pop();
                    } else {
                        full.push(segment);
                        break;
                    }
                }
                full.extend(segments);
                paths.push(full);
            }
        }
    }
    paths
}

/// The paths a `use` tail names: `a::b` gives `[a, b]`, `a::{b, c::d}` gives `[a, b]`, `[a, c, d]`.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let mut current = String::new();
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            current.push(c);
        } else if c == ':' && chars.peek().is_some_and(|(_, n)| *n == ':') {
            chars.next();
            segments.push(std::mem::take(&mut current));
        } else if c == '{' && current.is_empty() {
            let inner = &rest[i + 1..matching_brace(rest, i)];
            let mut out = Vec::new();
            for part in split_top_level(inner) {
                for tail in expand(part.trim()) {
                    let mut full = segments.clone();
                    full.extend(tail);
                    out.push(full);
                }
            }
            return out;
        } else {
            break;
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    vec![segments]
}

fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The file-to-file imports: each named path goes to the file of its longest module prefix.
fn import_graph(files: &[SourceFile]) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let by_module: BTreeMap<&[String], &SourceFile> =
        files.iter().map(|f| (f.module.as_slice(), f)).collect();
    let mut graph = BTreeMap::new();
    for file in files {
        let mut targets = BTreeSet::new();
        for path in named_paths(file) {
            let target = (1..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]).copied());
            if let Some(target) = target
                && target.path != file.path
            {
                targets.insert(target.path.clone());
            }
        }
        graph.insert(file.path.clone(), targets);
    }
    graph
}

/// A circle of imports, if there is one (depth-first search).
fn find_circle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.clone());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_file_of_src_imports_another_in_a_circle() {
    let graph = import_graph(&source_files());
    if let Some(circle) = find_circle(&graph) {
        let shown: Vec<String> = circle.iter().map(|p| p.display().to_string()).collect();
        panic!("an import circle: {}", shown.join(" -> "));
    }
}

#[test]
fn the_circle_finder_finds_a_circle_and_resolves_super_and_groups() {
    let file = |path: &str, module: &[&str], code: &str| SourceFile {
        path: PathBuf::from(path),
        module: module.iter().map(|s| s.to_string()).collect(),
        is_mod_file: path.ends_with("mod.rs"),
        code: code.to_owned(),
    };
    let files = vec![
        file("a/mod.rs", &["a"], "pub mod b;\nuse self::b::Thing;"),
        file("a/b.rs", &["a", "b"], "use super::{Other, c::More};"),
        file("a/c.rs", &["a", "c"], "pub struct More;"),
        file("d.rs", &["d"], "fn f() { crate::a::c::More; }"),
    ];
    let graph = import_graph(&files);
    assert_eq!(
        graph[&PathBuf::from("a/b.rs")],
        BTreeSet::from([PathBuf::from("a/mod.rs"), PathBuf::from("a/c.rs")])
    );
    assert_eq!(
        graph[&PathBuf::from("d.rs")],
        BTreeSet::from([PathBuf::from("a/c.rs")])
    );
    let circle = find_circle(&graph).expect("a/mod.rs and a/b.rs import each other");
    assert!(circle.contains(&PathBuf::from("a/b.rs")));
    assert!(files.iter().filter(|f| f.is_mod_file).count() == 1);

    let without = import_graph(&files[2..]);
    assert_eq!(find_circle(&without), None);
}

/// Whether a line of code runs SQL or builds an event to publish.
fn sql_or_event(line: &str) -> Option<&'static str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return None;
    }
    [
        ("sqlx::query", "runs SQL"),
        ("query_as", "runs SQL"),
        ("query_scalar", "runs SQL"),
        ("\"SELECT ", "holds SQL"),
        ("\"INSERT ", "holds SQL"),
        ("\"UPDATE ", "holds SQL"),
        ("\"DELETE ", "holds SQL"),
        ("NewEvent", "builds an event"),
        (".publish(", "publishes an event"),
    ]
    .into_iter()
    .find_map(|(needle, what)| code.contains(needle).then_some(what))
}

#[test]
fn the_edges_run_no_sql_and_build_no_event() {
    let mut found = Vec::new();
    for file in source_files() {
        let edge = matches!(
            file.module.first().map(String::as_str),
            Some("http" | "chat")
        );
        if !edge {
            continue;
        }
        for (n, line) in file.code.lines().enumerate() {
            if let Some(what) = sql_or_event(line) {
                found.push(format!(
                    "src/{}:{} {what}: {}",
                    file.path.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "edge code that belongs in commands/ or read_models/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_domain_does_no_io() {
    let mut found = Vec::new();
    for file in source_files() {
        if file.module.first().map(String::as_str) != Some("domain") {
            continue;
        }
        for (n, line) in file.code.lines().enumerate() {
            for io in [
                "tokio",
                "sqlx",
                "async_nats",
                "poem",
                "reqwest",
                "std::fs",
                "now_utc(",
            ] {
                if line.contains(io) && !line.trim_start().starts_with("//") {
                    found.push(format!("src/{}:{} uses {io}", file.path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O in the pure domain:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_file_of_src_is_over_600_lines_tests_aside() {
    let long: Vec<String> = source_files()
        .iter()
        .filter(|f| f.code.lines().count() > MAX_LINES)
        .map(|f| format!("src/{}: {} lines", f.path.display(), f.code.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_edge_rules_spot_sql_and_events() {
    assert_eq!(
        sql_or_event("let rows = sqlx::query(\"SELECT 1\")"),
        Some("runs SQL")
    );
    assert_eq!(
        sql_or_event("store.publish(NewEvent::new(event))"),
        Some("builds an event")
    );
    assert_eq!(sql_or_event("// sqlx::query in a comment"), None);
    assert_eq!(
        sql_or_event("let answer = commands::gifts::send(&state).await?;"),
        None
    );
}

/// The layers of `src/`, top first, by top-level module (`""`: `lib.rs` and `main.rs`). A file
/// may import its own layer and the layers below it; the rules of [`rule_broken`] narrow that.
const LAYERS: &[(&str, &[&str])] = &[
    ("the composition root", &["server", "cli", ""]),
    ("the REST edge", &["http"]),
    ("the REST edge's shared state", &["app"]),
    ("the chat edge", &["chat"]),
    ("the tools", &["ops", "lake", "bench"]),
    ("the followers", &["reactors", "projections"]),
    (
        "the write and read sides",
        &["commands", "read_models", "records"],
    ),
    ("the adapters", &["event_store", "ivs"]),
    ("the domain", &["domain"]),
    ("the events", &["events"]),
    ("the plumbing", &["runtime"]),
];

/// The only imports allowed to break a rule: (importing file, imported file, why). At most 3,
/// each explained in ARCHITECTURE.md.
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "commands/gifts.rs",
        "read_models/gift_records.rs",
        "a gift retried after it was projected gets its first answer, whose sequence only its \
         gift record keeps",
    ),
    (
        "commands/gifts.rs",
        "read_models/rooms.rs",
        "a gift to a streamer who has no room is refused 404 before anything is published",
    ),
];

/// The edges: none imports another (the stats socket is part of `http/`, which serves `/ws`).
const EDGES: &[&str] = &["http", "chat"];

/// The layer of a top-level module: its index in [`LAYERS`] (0 is the top).
fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, tops)| tops.contains(&top))
}

/// The top-level module of a file's module path (`""` for the crate root).
fn top_of(module: &[String]) -> &str {
    module.first().map(String::as_str).unwrap_or("")
}

/// The rule an import of `to` from `from` (top-level modules) breaks, if any.
fn rule_broken(from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    if from == "events" {
        return Some("events/ imports nothing of the crate outside events/".into());
    }
    if from == "domain" && to != "events" {
        return Some("domain/ imports only events/".into());
    }
    if from == "commands" && to == "read_models" {
        return Some("a command decides on no read model".into());
    }
    if from == "commands" && EDGES.contains(&to) {
        return Some("a command never imports an edge".into());
    }
    if EDGES.contains(&from) && EDGES.contains(&to) {
        return Some("edges never import each other (the composition root mounts them)".into());
    }
    let (Some(low), Some(high)) = (layer_of(from), layer_of(to)) else {
        return Some(format!("`{from}` or `{to}` is in no layer of LAYERS"));
    };
    (high < low).then(|| {
        format!(
            "imports run down: {} may not import {}, a layer above it",
            LAYERS[low].0, LAYERS[high].0
        )
    })
}

/// One import: the importing file, the path as named (`crate::app::AppState`), the imported file.
struct Import {
    from: PathBuf,
    named: String,
    to: PathBuf,
    from_top: String,
    to_top: String,
}

/// Every import of one file of `src/` from another, each path resolved to its file.
fn imports(files: &[SourceFile]) -> Vec<Import> {
    let by_module: BTreeMap<&[String], &SourceFile> =
        files.iter().map(|f| (f.module.as_slice(), f)).collect();
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        for path in named_paths(file) {
            let target = (1..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]).copied());
            let Some(target) = target.filter(|t| t.path != file.path) else {
                continue;
            };
            if !seen.insert((file.path.clone(), target.path.clone())) {
                continue;
            }
            found.push(Import {
                from: file.path.clone(),
                named: format!("crate::{}", path.join("::")).replace("::self", ""),
                to: target.path.clone(),
                from_top: top_of(&file.module).to_owned(),
                to_top: top_of(&target.module).to_owned(),
            });
        }
    }
    found
}

/// Whether an import runs up, from a lower layer to a higher one.
fn runs_up(import: &Import) -> bool {
    matches!(
        (layer_of(&import.from_top), layer_of(&import.to_top)),
        (Some(low), Some(high)) if high < low
    )
}

#[test]
fn imports_run_down_the_layers_and_keep_the_folder_rules() {
    assert!(ALLOWED.len() <= 3, "at most 3 allowed exceptions");
    let all = imports(&source_files());
    let up: Vec<&Import> = all.iter().filter(|i| runs_up(i)).collect();
    let allowed = |i: &Import| {
        ALLOWED
            .iter()
            .any(|(from, to, _)| i.from == Path::new(from) && i.to == Path::new(to))
    };
    let breaking = all
        .iter()
        .filter(|i| rule_broken(&i.from_top, &i.to_top).is_some())
        .count();
    println!(
        "upward imports: {} of {} file-to-file imports; imports that break a rule: {breaking} \
         ({} allowed)",
        up.len(),
        all.len(),
        ALLOWED.len()
    );
    let broken: Vec<String> = all
        .iter()
        .filter(|i| !allowed(i))
        .filter_map(|i| {
            rule_broken(&i.from_top, &i.to_top).map(|rule| {
                format!(
                    "src/{} imports {} (src/{}): {rule}",
                    i.from.display(),
                    i.named,
                    i.to.display()
                )
            })
        })
        .collect();
    for (from, to, _) in ALLOWED {
        assert!(
            all.iter()
                .any(|i| i.from == Path::new(from) && i.to == Path::new(to)),
            "the allowed import src/{from} -> src/{to} no longer exists: take it off ALLOWED"
        );
    }
    assert!(
        broken.is_empty(),
        "{} imports break the layer rules (ARCHITECTURE.md):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_layer_rules_name_what_they_forbid() {
    assert_eq!(rule_broken("http", "http"), None);
    assert_eq!(rule_broken("http", "commands"), None);
    assert_eq!(rule_broken("domain", "events"), None);
    assert!(
        rule_broken("domain", "runtime")
            .unwrap()
            .contains("only events")
    );
    assert!(
        rule_broken("events", "runtime")
            .unwrap()
            .contains("outside events")
    );
    assert!(
        rule_broken("commands", "read_models")
            .unwrap()
            .contains("read model")
    );
    assert!(rule_broken("http", "chat").unwrap().contains("each other"));
    assert!(rule_broken("chat", "http").unwrap().contains("each other"));
    assert!(
        rule_broken("chat", "app")
            .unwrap()
            .contains("a layer above")
    );
    assert!(
        rule_broken("runtime", "app")
            .unwrap()
            .contains("a layer above")
    );
    assert!(
        rule_broken("nowhere", "runtime")
            .unwrap()
            .contains("no layer")
    );
}
