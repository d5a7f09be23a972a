//! Every relative link of the repository's markdown (README.md, docs/*.md, the crates' and
//! compat-tests' READMEs, every other `*.md` git tracks or would track) points at a file or
//! directory that exists, and a link into a markdown file with an anchor (`page.md#section`, or
//! `#section` in the same file) at a heading of that file, by GitHub's anchor rules: the
//! heading's text lowercased, every character but letters, digits, spaces, `-` and `_` dropped,
//! spaces turned into `-`, and `-1`, `-2`, ... after repeated headings. `http(s):`, `mailto:`
//! and other links with a scheme are not checked. Links inside code (fenced blocks, inline code
//! spans) are not links.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// A link of a markdown file: the line it is on (from 1) and its target as written.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// Tracks fenced code blocks line by line: `true` for a line inside a block or on its fences.
#[derive(Default)]
struct Fences {
    open: Option<(char, usize)>,
}

impl Fences {
    fn in_code(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let fence = trimmed
            .chars()
            .next()
            .filter(|c| *c == '`' || *c == '~')
            .map(|c| (c, trimmed.chars().take_while(|x| *x == c).count()))
            .filter(|(_, n)| *n >= 3);
        match (self.open, fence) {
            (None, Some(f)) if indent <= 3 => {
                self.open = Some(f);
                true
            }
            (Some((c, n)), Some((fc, len)))
                if c == fc && len >= n && trimmed.trim_end().chars().all(|x| x == c) =>
            {
                self.open = None;
                true
            }
            (Some(_), _) => true,
            (None, _) => false,
        }
    }
}

/// `line` with its inline code spans blanked out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = run_at(i);
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = run_at(j);
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        if let Some(j) = close {
            out.extend(std::iter::repeat_n(' ', j + run - i));
            i = j + run;
        } else {
            out.extend(&chars[i..i + run]);
            i += run;
        }
    }
    out
}

/// The target of an inline link whose `](` ends just before `rest`.
fn inline_target(rest: &str) -> String {
    if let Some(angled) = rest.strip_prefix('<') {
        return angled.split('>').next().unwrap_or("").to_string();
    }
    let mut depth = 0usize;
    let mut target = String::new();
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => break,
            ')' => depth -= 1,
            c if c.is_whitespace() => break,
            _ => {}
        }
        target.push(c);
    }
    target
}

/// The links of `markdown`: inline ones (`[text](target)`, images too) and reference
/// definitions (`[label]: target`), outside code.
fn links(markdown: &str) -> Vec<Link> {
    let mut fences = Fences::default();
    let mut found = Vec::new();
    for (number, raw) in markdown.lines().enumerate() {
        if fences.in_code(raw) {
            continue;
        }
        let line = without_code_spans(raw);
        let mut from = 0;
        while let Some(at) = line[from..].find("](") {
            let start = from + at + 2;
            found.push(Link {
                line: number + 1,
                target: inline_target(&line[start..]),
            });
            from = start;
        }
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() <= 3
            && let Some(label_end) = trimmed.strip_prefix('[').and_then(|r| r.find("]:"))
        {
            let target = trimmed[1 + label_end + 2..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            found.push(Link {
                line: number + 1,
                target: target.trim_start_matches('<').trim_end_matches('>').to_string(),
            });
        }
    }
    found
}

/// The anchor GitHub gives a heading whose text (as written, after the `#`s) is `heading`.
fn github_slug(heading: &str) -> String {
    // The rendered text: a link or image shows its text, an HTML tag nothing.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(close) = after.find("](") {
            text.push_str(&after[..close]);
            let target = inline_target(&after[close + 2..]);
            rest = after[close + 2 + target.len()..].strip_prefix(')').unwrap_or("");
        } else {
            text.push('[');
            rest = after;
        }
    }
    text.push_str(rest);
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => plain.push(c),
            _ => {}
        }
    }
    plain
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

/// The anchors of a markdown file: one per heading (ATX `#` and setext), and `id`/`name`
/// attributes of HTML tags.
fn anchors(markdown: &str) -> HashSet<String> {
    let mut fences = Fences::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = HashSet::new();
    let mut add = |slug: String, out: &mut HashSet<String>| {
        let n = seen.entry(slug.clone()).or_insert(0);
        let anchor = if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        };
        *n += 1;
        out.insert(anchor);
    };
    let mut previous: Option<String> = None;
    for raw in markdown.lines() {
        if fences.in_code(raw) {
            previous = None;
            continue;
        }
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        let atx = indent <= 3
            && (1..=6).contains(&hashes)
            && trimmed[hashes..].chars().next().is_none_or(char::is_whitespace);
        if atx {
            let mut text = trimmed[hashes..].trim();
            // An optional closing run of `#`s.
            let closing = text.trim_end_matches('#');
            if closing.is_empty() || closing.ends_with(char::is_whitespace) {
                text = closing.trim_end();
            }
            add(github_slug(text), &mut out);
            previous = None;
            continue;
        }
        let underline = trimmed.trim_end();
        let setext = indent <= 3
            && !underline.is_empty()
            && (underline.chars().all(|c| c == '=') || underline.chars().all(|c| c == '-'));
        if setext && let Some(text) = previous.take() {
            add(github_slug(&text), &mut out);
            continue;
        }
        for attr in ["id=\"", "name=\""] {
            let mut from = 0;
            while let Some(at) = raw[from..].find(attr) {
                let start = from + at + attr.len();
                if let Some(end) = raw[start..].find('"') {
                    out.insert(raw[start..start + end].to_string());
                }
                from = start;
            }
        }
        // A line that can carry a setext underline: paragraph text, not a list, table or quote.
        let paragraph = !trimmed.is_empty()
            && indent <= 3
            && !trimmed.starts_with(['-', '*', '+', '|', '>', '<'])
            && !trimmed.starts_with(|c: char| c.is_ascii_digit());
        previous = paragraph.then(|| trimmed.trim_end().to_string());
    }
    out
}

/// `%xx` escapes decoded (UTF-8), as GitHub resolves a link.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` with `.` and `..` resolved lexically; `None` if it climbs above its start.
fn normalized(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Why `link` of `file` (relative to `root`) is broken, if it is.
fn broken(
    root: &Path,
    file: &Path,
    link: &Link,
    cache: &mut HashMap<PathBuf, HashSet<String>>,
) -> Option<String> {
    let target = link.target.as_str();
    if target.is_empty() {
        return Some("empty link target".to_string());
    }
    let scheme = target.split_once(':').map(|(s, _)| s);
    if scheme
        .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    {
        return None; // http(s), mailto, ...: not a file of this repository
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (percent_decoded(path), Some(percent_decoded(anchor))),
        None => (percent_decoded(target), None),
    };
    let relative = if path.is_empty() {
        Some(file.to_path_buf())
    } else if let Some(from_root) = path.strip_prefix('/') {
        normalized(Path::new(from_root))
    } else {
        normalized(&file.parent().unwrap_or(Path::new("")).join(&path))
    };
    let Some(relative) = relative else {
        return Some("points outside the repository".to_string());
    };
    let full = root.join(&relative);
    if !full.exists() {
        return Some(format!("no such file or directory: {}", relative.display()));
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    if full.is_dir() || full.extension().is_none_or(|ext| ext != "md") {
        return None; // an anchor into another kind of file (`#L10`) is not checked
    }
    let anchors = cache
        .entry(relative.clone())
        .or_insert_with(|| anchors(&std::fs::read_to_string(&full).unwrap_or_default()));
    if anchors.contains(&anchor) {
        None
    } else {
        Some(format!(
            "no heading with the anchor #{anchor} in {}",
            relative.display()
        ))
    }
}

/// Every broken relative link of `markdown`, the text of `file` (relative to `root`), as
/// `file:line: link (target): why`.
fn broken_links(
    root: &Path,
    file: &Path,
    markdown: &str,
    cache: &mut HashMap<PathBuf, HashSet<String>>,
) -> Vec<String> {
    links(markdown)
        .iter()
        .filter_map(|link| {
            broken(root, file, link, cache)
                .map(|why| format!("{}:{}: link ({}): {why}", file.display(), link.line, link.target))
        })
        .collect()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The markdown files git tracks, and new ones it does not ignore, relative to `root`; without
/// git, every `*.md` outside `target` and hidden directories.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "*.md",
        ])
        .output();
    let mut files: Vec<PathBuf> = match listed {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .filter(|p| root.join(p).is_file())
            .collect(),
        _ => {
            let mut found = Vec::new();
            let mut dirs = vec![PathBuf::new()];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(root.join(&dir)).expect("a directory").flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let path = dir.join(&name);
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        if name != "target" && !name.starts_with('.') {
                            dirs.push(path);
                        }
                    } else if path.extension().is_some_and(|ext| ext == "md") {
                        found.push(path);
                    }
                }
            }
            found
        }
    };
    files.sort();
    files.dedup();
    files
}

#[test]
fn every_relative_link_of_the_repository_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    for expected in ["README.md", "docs/guarantees.md", "compat-tests/README.md"] {
        assert!(
            files.contains(&PathBuf::from(expected)),
            "{expected} is not among the markdown files found: {files:?}"
        );
    }
    let mut cache = HashMap::new();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let markdown = std::fs::read_to_string(root.join(file)).expect("a markdown file");
        checked += links(&markdown).len();
        broken.extend(broken_links(&root, file, &markdown, &mut cache));
    }
    assert!(
        checked > 50,
        "only {checked} links found in {} files",
        files.len()
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn slugs_follow_github() {
    for (heading, slug) in [
        (
            "A replicated key-value map: `KvStateMachine`",
            "a-replicated-key-value-map-kvstatemachine",
        ),
        (
            "raft-kv: a replicated key-value server",
            "raft-kv-a-replicated-key-value-server",
        ),
        ("Under openraft 0.9", "under-openraft-09"),
        ("Quick start: openraft 0.10", "quick-start-openraft-010"),
        ("sled (experimental)", "sled-experimental"),
        (
            "Codecs: acknowledged means returned as written",
            "codecs-acknowledged-means-returned-as-written",
        ),
        (
            "snake_case and [a link](x.md) *emphasis*",
            "snake_case-and-a-link-emphasis",
        ),
        ("Ünïcode  two spaces", "ünïcode--two-spaces"),
    ] {
        assert_eq!(github_slug(heading), slug, "{heading}");
    }
    let md = "# Top #\n\n## Same\n\n```\n# not a heading\n```\n\n## Same\n\nSetext\n------\n\n<a name=\"here\"></a>\n";
    let mut got: Vec<String> = anchors(md).into_iter().collect();
    got.sort();
    assert_eq!(got, ["here", "same", "same-1", "setext", "top"]);
}

#[test]
fn links_outside_code_are_found() {
    let md = "See [a](docs/a.md) and ![i](img.svg \"title\"), [b](<with space.md>) `[c](code.md)`\n```sh\n[d](block.md)\n```\n[ref]: docs/ref.md\n[p](x_(y).md)\n";
    let targets: Vec<(usize, String)> = links(md).into_iter().map(|l| (l.line, l.target)).collect();
    assert_eq!(
        targets,
        [
            (1, "docs/a.md".to_string()),
            (1, "img.svg".to_string()),
            (1, "with space.md".to_string()),
            (5, "docs/ref.md".to_string()),
            (6, "x_(y).md".to_string()),
        ]
    );
}

#[test]
fn the_check_finds_broken_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# A section\n\n[back](../README.md#top)\n",
    )
    .unwrap();
    let readme = "\
# Top

## Quick start: openraft 0.10

[ok](docs/a.md) [ok](docs/a.md#a-section) [ok](#quick-start-openraft-010) [ok](docs)
[web](https://example.com/none.md) [mail](mailto:a@example.com) `[code](nowhere.md)`
[missing](docs/none.md)
[bad anchor](docs/a.md#no-such-section)
[bad own anchor](#no-such-heading)
[outside](../../elsewhere.md)
```
[in a block](nowhere.md)
```
";
    std::fs::write(root.join("README.md"), readme).unwrap();
    let mut cache = HashMap::new();
    let found = broken_links(root, Path::new("README.md"), readme, &mut cache);
    assert_eq!(
        found,
        [
            "README.md:7: link (docs/none.md): no such file or directory: docs/none.md",
            "README.md:8: link (docs/a.md#no-such-section): no heading with the anchor #no-such-section in docs/a.md",
            "README.md:9: link (#no-such-heading): no heading with the anchor #no-such-heading in README.md",
            "README.md:10: link (../../elsewhere.md): points outside the repository",
        ]
    );
    let page = std::fs::read_to_string(root.join("docs/a.md")).unwrap();
    assert!(broken_links(root, Path::new("docs/a.md"), &page, &mut cache).is_empty());
}
