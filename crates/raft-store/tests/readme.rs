//! The README's Rust snippets are compiled as doc tests of this crate (`ReadmeSnippets` in
//! `lib.rs`). A doc test also sees this crate's dev-dependencies, which a user of the facade
//! does not have: this checks that no snippet that is compiled names one of them.

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

/// The Rust code blocks of `markdown` that rustdoc compiles: the info string of each, and its
/// lines. Untagged blocks count (rustdoc compiles them as Rust); `ignore` and `text` ones do not.
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
    assert!(open.is_none(), "the README ends inside a code block");
    blocks
        .into_iter()
        .filter(|(info, _, _)| {
            let attrs: Vec<&str> = info.split(',').map(str::trim).collect();
            let rust = info.is_empty() || attrs.contains(&"rust");
            rust && !attrs.contains(&"ignore")
        })
        .collect()
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
    for (_, line, lines) in &blocks {
        for (offset, text) in lines.iter().enumerate() {
            for name in NOT_A_USERS_DEPENDENCY {
                assert!(
                    !text.contains(name),
                    "README line {}: `{name}` is not a dependency of a raft-store user: {text}",
                    line + 1 + offset
                );
            }
        }
    }
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
}
