//! The Rust snippets of the README and of the pages in `docs/` are compiled as doc tests of this
//! crate (`ReadmeSnippets` and `docs_snippets` in `lib.rs`). This checks that every page with a
//! compiled snippet is included there, and, since a doc test also sees this crate's
//! dev-dependencies, which a user of the facade does not have, that no compiled snippet names
//! one of them.

use std::path::{Path, PathBuf};

/// Crates a doc test of the facade can reach but its users cannot.
const NOT_A_USERS_DEPENDENCY: [&str; 8] = [
    "raft_store_core",
    "raft_store_engine",
    "raft_store_redb",
    "raft_store_lmdb",
    "raft_store_rocksdb",
    "raft_store_sled",
    // openraft 0.9 under its renamed package: a 0.9 user says `openraft`, or the facade's
    // `raft_store::openraft09::openraft`.
    "openraft_09",
    "tempfile",
];

/// The facade's source, which includes the markdown whose snippets are compiled.
const LIB_RS: &str = include_str!("../src/lib.rs");

/// The Rust code blocks of `markdown` that rustdoc compiles: the info string of each, the line
/// of its opening fence, and its lines. Untagged blocks count (rustdoc compiles them as Rust);
/// `ignore` and `text` ones do not.
fn compiled_blocks(markdown: &str) -> Vec<(String, usize, Vec<&str>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, Vec<&str>)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => open = Some((info.trim().to_string(), number + 1, Vec::new())),
            }
        } else if let Some((_, _, lines)) = open.as_mut() {
            lines.push(line);
        }
    }
    assert!(open.is_none(), "the markdown ends inside a code block");
    blocks
        .into_iter()
        .filter(|(info, _, _)| {
            let attrs: Vec<&str> = info.split(',').map(str::trim).collect();
            let rust = info.is_empty() || attrs.contains(&"rust");
            rust && !attrs.contains(&"ignore")
        })
        .collect()
}

/// Each line of a compiled block of `markdown` that names a crate a user does not have, as
/// `file:line: message`.
fn names_outside_the_facade(file: &str, markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (_, line, lines) in compiled_blocks(markdown) {
        for (offset, text) in lines.iter().enumerate() {
            for name in NOT_A_USERS_DEPENDENCY {
                if text.contains(name) {
                    found.push(format!(
                        "{file}:{}: `{name}` is not a dependency of a raft-store user: {text}",
                        line + 1 + offset
                    ));
                }
            }
        }
    }
    found
}

/// The pages (name, markdown) with a compiled snippet that `lib_rs` does not include as
/// `include_str!("../../../docs/<name>")`.
fn pages_not_included<'a>(lib_rs: &str, pages: &'a [(String, String)]) -> Vec<&'a str> {
    pages
        .iter()
        .filter(|(_, markdown)| !compiled_blocks(markdown).is_empty())
        .filter(|(name, _)| !lib_rs.contains(&format!("include_str!(\"../../../docs/{name}\")")))
        .map(|(name, _)| name.as_str())
        .collect()
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// Every `docs/*.md`: its file name and text.
fn docs_pages() -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = std::fs::read_dir(docs_dir())
        .expect("the docs directory")
        .map(|entry| entry.expect("a docs entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("a docs page");
            (name, text)
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn readme_snippets_name_only_what_a_facade_user_has() {
    let readme = include_str!("../../../README.md");
    let blocks = compiled_blocks(readme);
    assert!(
        blocks.len() >= 3,
        "expected the README's usage snippets (facade, openraft 0.10, openraft 0.9), found {}",
        blocks.len()
    );
    let found = names_outside_the_facade("README.md", readme);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn docs_snippets_are_compiled_and_name_only_what_a_facade_user_has() {
    let pages = docs_pages();
    let with_snippets = pages
        .iter()
        .filter(|(_, markdown)| !compiled_blocks(markdown).is_empty())
        .count();
    assert!(
        with_snippets >= 2,
        "expected the snippets of docs/guarantees.md and docs/kv-state-machine.md, found {with_snippets} pages with compiled snippets"
    );
    let missing = pages_not_included(LIB_RS, &pages);
    assert!(
        missing.is_empty(),
        "docs pages with compiled Rust snippets that crates/raft-store/src/lib.rs does not include \
         (add an item to `docs_snippets` with #[doc = include_str!(\"../../../docs/<page>\")]): {missing:?}"
    );
    let found: Vec<String> = pages
        .iter()
        .flat_map(|(name, markdown)| names_outside_the_facade(&format!("docs/{name}"), markdown))
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_snippet_of_each_kind() {
    let md = "```rust,no_run\nuse raft_store_core::X;\n```\n```rust,ignore\nraft_store_core\n```\n```\nx\n```\n```sh\nls\n```\n";
    let blocks = compiled_blocks(md);
    let infos: Vec<&str> = blocks.iter().map(|(info, _, _)| info.as_str()).collect();
    assert_eq!(
        infos,
        ["rust,no_run", ""],
        "no_run and untagged are compiled, ignore and sh not"
    );
    assert_eq!(blocks[0].2, ["use raft_store_core::X;"]);
    assert_eq!(
        names_outside_the_facade("x.md", md),
        ["x.md:2: `raft_store_core` is not a dependency of a raft-store user: use raft_store_core::X;"]
    );
}

#[test]
fn the_check_sees_a_page_that_is_not_included() {
    let pages = vec![
        (
            "compiled.md".to_string(),
            "```rust\nlet x = 1;\n```\n".to_string(),
        ),
        (
            "ignored.md".to_string(),
            "```rust,ignore\nx\n```\n```sh\nls\n```\n".to_string(),
        ),
        (
            "included.md".to_string(),
            "```rust\nlet y = 2;\n```\n".to_string(),
        ),
    ];
    let lib_rs = "#[doc = include_str!(\"../../../docs/included.md\")]\npub struct Included;\n";
    assert_eq!(pages_not_included(lib_rs, &pages), ["compiled.md"]);
    assert!(pages_not_included(LIB_RS, &pages[1..2]).is_empty());
}

/// The one line `docs/conformance.md` tells a user to write for their engine is, word for word,
/// the line that runs the suite on the custom engine of the testkit's own tests.
#[test]
fn the_conformance_instructions_are_run_word_for_word() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/conformance.md")).expect("docs/conformance.md");
    let test = std::fs::read_to_string(root.join("crates/raft-store-testkit/tests/custom_engine.rs"))
        .expect("the testkit's custom_engine.rs");
    let line = docs
        .lines()
        .find(|l| l.starts_with("raft_store_testkit::conformance_suite!("))
        .expect("docs/conformance.md gives the one-line suite");
    assert!(
        test.lines().any(|l| l == line),
        "custom_engine.rs does not run `{line}` word for word"
    );
}
