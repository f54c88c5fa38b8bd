//! The library's promise to its users: depending on it compiles no command-line parser.
//! `luoctl` is its own crate for that reason (as ripgrep's `rg` sits beside the `grep-*`
//! crates).

use std::process::Command;

#[test]
fn the_library_pulls_in_no_command_line_parser() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
        .args(["--all-features", "--package", "luo-user", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo runs the tests, so it can be run");
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        tree.starts_with("luo-user "),
        "not luo-user's tree:\n{tree}"
    );
    let parsers: Vec<&str> = tree
        .lines()
        .filter(|line| line.starts_with("clap"))
        .collect();
    assert!(parsers.is_empty(), "the library depends on {parsers:?}");
}
