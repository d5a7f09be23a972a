//! Every public case of the suite runs: each is in a list beside its function (a `__*_list!`
//! macro in its module, which the suite's macros expand into one `#[test]` each), or is expanded
//! by hand in the suite's macros (the few cases that take more than the harness). A case that
//! is in neither would compile and never run.

use std::collections::BTreeSet;
use std::path::Path;

/// The modules holding cases, relative to `src/`.
const CASE_MODULES: &[&str] = &[
    "bad_input.rs",
    "careless.rs",
    "engine_cases.rs",
    "engine_log_cases.rs",
    "fs_faults.rs",
    "generated_cases.rs",
    "group_cases.rs",
    "kv_cases.rs",
    "log_cases.rs",
    "openraft09.rs",
    "power_cut/mod.rs",
    "power_cut/batches.rs",
];

/// Modules whose public functions return a `CaseResult` but are helpers the cases call (a
/// comparison, the property runner), not cases: they are in no list on purpose.
const HELPER_MODULES: &[&str] = &["util.rs", "generate.rs"];

/// The files whose macros expand cases by hand.
const MACRO_FILES: &[&str] = &["macros.rs", "engine_macros.rs"];

/// The public functions of `source` that return a `CaseResult`: the cases.
fn public_cases(source: &str) -> BTreeSet<String> {
    let mut cases = BTreeSet::new();
    for (at, _) in source.match_indices("\npub ") {
        let rest = &source[at + 5..];
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let Some(rest) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let signature = rest.split('{').next().unwrap_or_default();
        if signature.contains("-> CaseResult") {
            cases.insert(name);
        }
    }
    cases
}

/// The names in the `__*_list` macros of `source`: the identifiers after the `;` of each
/// `$crate::$mac!($($args)*; ...)` call in their bodies.
fn listed(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in source.match_indices("macro_rules! __") {
        let header: String = source[at..].chars().take_while(|c| *c != '{').collect();
        if !header.trim_end().ends_with("_list") {
            continue;
        }
        let body = &source[at + header.len()..];
        let end = body.find("\n}\n").unwrap_or(body.len());
        for call in body[..end].split("$($args)*;").skip(1) {
            let list = call.split(')').next().unwrap_or_default();
            names.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
            );
        }
    }
    names
}

/// The cases of `module` the suite's macros call by hand: `$crate::<module>::<case>`, or through
/// the parent module that re-exports them (`power_cut::engine_batches` of `power_cut::batches`).
fn expanded_by_hand(macros: &str, module: &str) -> BTreeSet<String> {
    let mut paths = vec![module.to_string()];
    if let Some((parent, _)) = module.rsplit_once("::") {
        paths.push(parent.to_string());
    }
    let mut found = BTreeSet::new();
    for path in paths {
        let prefix = format!("$crate::{path}::");
        found.extend(macros.match_indices(&prefix).map(|(at, _)| {
            macros[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        }));
    }
    found
}

/// The public cases of `source` (module `module`) in no list and not expanded by hand.
fn unlisted(source: &str, module: &str, macros: &str) -> Vec<String> {
    let listed = listed(source);
    let by_hand = expanded_by_hand(macros, module);
    public_cases(source)
        .into_iter()
        .filter(|case| !listed.contains(case) && !by_hand.contains(case))
        .collect()
}

#[test]
fn every_public_case_is_listed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let read = |file: &str| {
        std::fs::read_to_string(src.join(file)).unwrap_or_else(|e| panic!("reading src/{file}: {e}"))
    };
    let macros: String = MACRO_FILES.iter().map(|f| read(f)).collect();
    let mut missing = Vec::new();
    let mut cases = 0;
    for file in CASE_MODULES {
        let source = read(file);
        let module = file
            .trim_end_matches(".rs")
            .trim_end_matches("/mod")
            .replace('/', "::");
        cases += public_cases(&source).len();
        missing.extend(
            unlisted(&source, &module, &macros)
                .into_iter()
                .map(|case| format!("{module}::{case}")),
        );
    }
    assert!(
        missing.is_empty(),
        "public cases in no list (add each to the `__*_list!` macro of its module): {missing:?}"
    );
    // The parser must see the cases at all, or the check above passes on nothing.
    assert!(cases > 60, "found only {cases} public cases in {CASE_MODULES:?}");
}

#[test]
fn a_new_case_in_no_list_is_found() {
    let source = "use x;\n\n\
        macro_rules! __demo_case_list {\n    ($mac:ident!($($args:tt)*)) => {\n        \
        $crate::$mac!($($args)*;\n            listed_case,\n        );\n    };\n}\n\n\
        pub fn listed_case<H: EngineHarness>(h: &H) -> CaseResult {\n    Ok(())\n}\n\n\
        pub async fn new_case<H: EngineHarness>(h: &H) -> CaseResult {\n    Ok(())\n}\n\n\
        pub fn helper() -> u64 {\n    1\n}\n\n\
        pub fn by_hand(h: &H, name: &str) -> CaseResult {\n    Ok(())\n}\n";
    let macros = "fn t() { $crate::check($crate::demo::by_hand(&h, \"x\")); }";
    assert_eq!(unlisted(source, "demo", macros), vec!["new_case".to_string()]);
}

#[test]
fn every_module_with_cases_is_checked() {
    // A module of cases added to the crate but not to CASE_MODULES would escape the check.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut with_cases = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("read a source file");
                if !public_cases(&source).is_empty() {
                    let relative = path.strip_prefix(&src).expect("under src");
                    with_cases.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
    }
    with_cases.sort();
    let unchecked: Vec<_> = with_cases
        .iter()
        .filter(|f| !CASE_MODULES.contains(&f.as_str()) && !HELPER_MODULES.contains(&f.as_str()))
        .collect();
    assert!(
        unchecked.is_empty(),
        "modules with public cases in neither CASE_MODULES nor HELPER_MODULES: {unchecked:?}"
    );
}
