//! `cargo xtask gen-abi-doc`: write the ABI document from `luo-sysfs-abi`.

use crate::build::cache::workspace;

/// The document's path in the repository.
pub const PATH: &str = "Documentation/ABI/testing/sysfs-kernel-liveupdate";

/// Regenerates the document.
pub fn write() -> Result<(), String> {
    let mut text = String::new();
    luo_sysfs_abi::write_abi_doc(&mut text).map_err(|err| format!("generating: {err}"))?;
    let path = workspace().join(PATH);
    std::fs::write(&path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
