//! The layering rule of `main.rs`, checked on the sources: a module names only modules of its
//! own top-level folder or of a lower layer (`crate::NAME` outside comments).

use std::path::{Path, PathBuf};

/// Each top-level module and its layer, lowest first (the list in `main.rs`).
const LAYERS: &[(&str, u8)] = &[
    ("run", 1),
    ("build", 2),
    ("guest", 3),
    ("series", 3),
    ("scenario", 4),
    ("bench", 4),
    ("test", 5),
    ("flags", 5),
    ("main", 5),
    ("layers", 5),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level modules a line of code names as `crate::NAME` or `crate::{NAME, ...}`.
fn named(line: &str) -> Vec<&str> {
    let ident = |text: &str| -> usize {
        text.find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(text.len())
    };
    let mut names = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        let rest = &line[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|item| {
                let item = item.trim();
                &item[..ident(item)]
            }));
        } else {
            names.push(&rest[..ident(rest)]);
        }
    }
    names
}

#[test]
fn no_module_names_a_higher_or_sibling_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for file in sources(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        let own = layer(top).unwrap_or_else(|| panic!("{top} is not in LAYERS"));
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in named(line) {
                // Names that are no module (`crate::kernel_sysfs` in the series' text) pass.
                let Some(other) = layer(name) else { continue };
                if name != top && other >= own {
                    violations.push(format!(
                        "{}:{}: {top} (layer {own}) names {name} (layer {other})",
                        relative.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn grouped_and_plain_paths_are_both_seen() {
    assert_eq!(
        named("use crate::build::{cache, setup}; crate::run::step(x)"),
        ["build", "run"]
    );
    assert_eq!(
        named("use crate::{guest, series::tree};"),
        ["guest", "series"]
    );
}
