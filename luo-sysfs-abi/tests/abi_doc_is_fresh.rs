//! The committed ABI document is exactly what the generator writes.

use std::path::Path;

#[test]
fn committed_abi_doc_matches_the_generator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../Documentation/ABI/testing/sysfs-kernel-liveupdate");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let mut generated = String::new();
    luo_sysfs_abi::write_abi_doc(&mut generated).expect("writing to a String cannot fail");
    assert!(
        committed == generated,
        "{} is stale: run `cargo xtask gen-abi-doc` and commit the result",
        path.display()
    );
}

#[test]
fn abi_doc_names_every_observable_state() {
    let mut doc = String::new();
    luo_sysfs_abi::write_abi_doc(&mut doc).unwrap();
    for state in luo_state::State::OBSERVABLE {
        let label = format!("\t\t{}\t", state.word());
        assert!(doc.contains(&label), "no entry for {state}");
    }
    assert!(!doc.contains("undefined\t"));
}
