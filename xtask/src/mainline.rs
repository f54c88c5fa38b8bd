//! luo beside mainline's live update orchestrator (LUO), in guests booted with `liveupdate=on`:
//! the observer flavour of the in-tree kernel, with mainline's own selftests and a memfd that
//! survives; and the out-of-tree module's refusal on the module's kernel.
//!
//! Mainline's selftests (`tools/testing/selftests/liveupdate/`) are built, unchanged, from the
//! installed 7.3 source against its own uapi headers, and cached by the source's version.

use std::path::PathBuf;
use std::process::Command;

use crate::cache;
use crate::kernel::{self, Kernel};
use crate::liveupdate;
use crate::module::{self, Module};
use crate::patches;
use crate::run::{self, Result};
use crate::setup;
use crate::vm::{self, GuestOptions};

/// The guest script of the observer flavour (four boots); see its header.
const OBSERVER_SCRIPT: &str = include_str!("../../tests/guest-scripts/observer.sh");

/// The line its last boot prints when every check held.
const OBSERVER_DONE: &str =
    "observer: memory survived, every watched change legal, empty kexecs normal";

/// Mainline's selftest programs this project runs.
const SELFTESTS: &[&str] = &["liveupdate", "luo_kexec_simple", "luo_multi_session"];

/// `cargo xtask test-mainline`: both tests, the in-tree kernel built (or taken from the cache)
/// from the series as it is now.
pub fn run() -> Result {
    setup::run()?;
    test_module_refusal(&module::ensure()?)?;
    let series = patches::generate(&patches::default_out())?;
    let tree = patches::apply(&series)?;
    test_observer(&kernel::build_in_tree(&series, &tree)?)
}

/// Builds mainline's liveupdate selftests (cached), returning their directory.
pub fn selftests() -> Result<PathBuf> {
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).unwrap_or_default();
    let out = cache::dir("selftests-liveupdate")?.join(cache::key(&[version.as_bytes()]));
    if SELFTESTS.iter().all(|name| out.join(name).is_file()) {
        return Ok(out);
    }
    run::step("mainline's liveupdate selftests, from the 7.3 source");
    let source = kernel::source_tree()?;
    let headers = out.join("headers");
    std::fs::create_dir_all(&headers)
        .map_err(|err| format!("cannot create {}: {err}", headers.display()))?;
    let log = cache::log("selftests-liveupdate")?;
    run::run_logged(
        "the uapi headers (make headers_install)",
        Command::new("make")
            .arg("-C")
            .arg(&source)
            .arg(format!("O={}", out.join("headers-build").display()))
            .arg(format!("INSTALL_HDR_PATH={}", headers.display()))
            .arg("headers_install"),
        &log,
    )?;
    run::run_logged(
        "make -C tools/testing/selftests/liveupdate",
        Command::new("make")
            .arg("-C")
            .arg(source.join("tools/testing/selftests/liveupdate"))
            .arg(format!("OUTPUT={}", out.display()))
            .arg(format!(
                "KHDR_INCLUDES=-isystem {}",
                headers.join("include").display()
            )),
        &log,
    )?;
    for name in SELFTESTS {
        if !out.join(name).is_file() {
            return Err(format!(
                "the selftests built no {name} in {} (log: {})",
                out.display(),
                log.display()
            ));
        }
    }
    Ok(out)
}

/// Checks `luo_user::session::uapi::FACTS` against the 7.3 source's uapi header: a C program
/// compiled against the installed headers prints each fact, and every number must match.
pub fn check_session_uapi() -> Result {
    run::step("luo-user's session ABI against the 7.3 uapi header");
    let selftests = selftests()?;
    let include = selftests.join("headers/include");
    let facts = luo_user::session::uapi::FACTS;
    let mut program = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/liveupdate.h>\n\
         int main(void)\n{\n",
    );
    for (expr, _) in facts {
        program.push_str(&format!(
            "\tprintf(\"%llu\\n\", (unsigned long long)({expr}));\n"
        ));
    }
    program.push_str("\treturn 0;\n}\n");
    let dir = cache::dir("session-uapi")?;
    let source = dir.join("facts.c");
    let binary = dir.join("facts");
    std::fs::write(&source, program)
        .map_err(|err| format!("cannot write {}: {err}", source.display()))?;
    run::run(
        Command::new("cc")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-isystem")
            .arg(&include)
            .arg("-o")
            .arg(&binary)
            .arg(&source),
    )?;
    let printed = run::output(&mut Command::new(&binary))?;
    let values: Vec<&str> = printed.lines().collect();
    let mut wrong = Vec::new();
    for ((expr, ours), theirs) in facts.iter().zip(&values) {
        if theirs.parse::<u64>() != Ok(*ours) {
            wrong.push(format!(
                "{expr}: the header says {theirs}, luo-user says {ours}"
            ));
        }
    }
    if values.len() != facts.len() || !wrong.is_empty() {
        return Err(format!(
            "luo-user's session ABI differs from {}:\n{}",
            include.join("linux/liveupdate.h").display(),
            wrong.join("\n")
        ));
    }
    eprintln!("    {} numbers match the header", facts.len());
    Ok(())
}

/// The observer flavour on `kernel` (the in-tree kernel), booted with `liveupdate=on`.
pub fn test_observer(kernel: &Kernel) -> Result {
    let selftests = selftests()?;
    // The userspace tools of the live-update tests (luoctl, the guest checks).
    let _tools = liveupdate::prepare_tools()?;
    run::step("luo beside mainline LUO: the observer flavour (QEMU, liveupdate=on, four boots)");
    let dir = cache::dir("observer")?;
    liveupdate::clear(&dir)?;
    let script = format!(
        "LUOCTL={luoctl}\nCHECK={check}\nDIR={dir}\nBZIMAGE={bz}\nSELFTESTS={selftests}\n{OBSERVER_SCRIPT}",
        luoctl = vm::shell_quote(
            &cache::workspace()
                .join("target/debug/luoctl")
                .to_string_lossy()
        ),
        check = vm::shell_quote(
            &cache::workspace()
                .join("target/debug/luo-guest-tests")
                .to_string_lossy()
        ),
        dir = vm::shell_quote(&dir.to_string_lossy()),
        bz = vm::shell_quote(&kernel.build.join("arch/x86/boot/bzImage").to_string_lossy()),
        selftests = vm::shell_quote(&selftests.to_string_lossy()),
    );
    let options = GuestOptions {
        rw_dirs: vec![dir.clone()],
        append: vec!["liveupdate=on".to_owned()],
    };
    let guest = vm::run_in_guest_with(&kernel.build, &script, &options, |_, _, _| {})?;
    let what = "the observer flavour beside mainline LUO";
    if !guest.success() {
        return Err(vm::failure_report(what, &guest));
    }
    if !guest
        .stdout
        .lines()
        .any(|line| line.trim() == OBSERVER_DONE)
    {
        return Err(format!(
            "{what}: expected the line '{OBSERVER_DONE}'; the guest printed:\n{}",
            guest.stdout
        ));
    }
    eprintln!("    {what}: ok ({:.1?})", guest.elapsed);
    for line in guest.stdout.lines() {
        eprintln!("      {line}");
    }
    Ok(())
}

/// The out-of-tree module on its kernel (`CONFIG_LIVEUPDATE=y`) booted with `liveupdate=on`:
/// mainline owns `/dev/liveupdate`, so the load fails with one line that names the in-tree
/// flavour, no splat, and nothing left behind.
pub fn test_module_refusal(module: &Module) -> Result {
    run::step("luo.ko next to mainline LUO on (QEMU, liveupdate=on)");
    let script = format!(
        "set -u\n\
         KO={ko}\n\
         [ -c /dev/liveupdate ] || {{ echo \"FAIL: mainline's /dev/liveupdate is missing\"; exit 1; }}\n\
         if insmod \"$KO\" 2>/dev/null; then echo 'FAIL: luo.ko loaded next to mainline LUO'; exit 1; fi\n\
         [ ! -e /sys/kernel/liveupdate ] || {{ echo 'FAIL: /sys/kernel/liveupdate was left behind'; exit 1; }}\n\
         lines=$(dmesg | grep -c '^\\[ *[0-9.]*\\] luo: not loading')\n\
         [ \"$lines\" = 1 ] || {{ echo \"FAIL: $lines refusal lines\"; dmesg | grep 'luo:'; exit 1; }}\n\
         dmesg | grep 'luo: not loading' | grep -q 'CONFIG_LIVEUPDATE_SYSFS_API' || {{ echo 'FAIL: the refusal does not name the in-tree flavour'; dmesg | grep 'luo:'; exit 1; }}\n\
         if dmesg | grep -qE 'WARNING:|BUG:|Call Trace:'; then echo 'FAIL: a splat'; dmesg | tail -n 40; exit 1; fi\n\
         echo \"refused: $(dmesg | grep -o 'luo: not loading.*')\"\n",
        ko = vm::shell_quote(&module.ko.to_string_lossy()),
    );
    let options = GuestOptions {
        rw_dirs: Vec::new(),
        append: vec!["liveupdate=on".to_owned()],
    };
    let guest = vm::run_in_guest_with(&module.kernel.build, &script, &options, |_, _, _| {})?;
    let what = "luo.ko next to mainline LUO";
    if !guest.success() {
        return Err(vm::failure_report(what, &guest));
    }
    eprintln!("    {what}: ok ({:.1?})", guest.elapsed);
    for line in guest.stdout.lines() {
        eprintln!("      {line}");
    }
    Ok(())
}
