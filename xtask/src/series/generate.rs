//! `cargo xtask patches [--out DIR]`: writes the series (see [`crate::series`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{abi_doc, cache, module, setup, sources};
use crate::run::{self, Result};
use crate::series::git::{Git, identity};
use crate::series::{read, write};

/// Where the module goes in the tree: next to kexec handover, which it needs to detect a live
/// update, and to the orchestrator it excludes (`CONFIG_LIVEUPDATE`), in the directory the v3
/// seed put its `luo_sysfs.c` in. It is core kernel code (a reboot notifier, KHO, a state every
/// boot has), not a driver, so `drivers/misc/` would be the wrong home.
pub const TREE_DIR: &str = "kernel/liveupdate/luo_sysfs";

/// The Kconfig option, named as in the v3 seed.
pub const OPTION: &str = "LIVEUPDATE_SYSFS_API";

/// Where the abstraction goes in the tree.
pub const ABSTRACTION_PATH: &str = "rust/kernel/sysfs.rs";

/// The abstraction in the repository, and the module's name for it out of tree.
pub const ABSTRACTION_SOURCE: &str = "luo-kmod/kernel/sysfs.rs";

/// The abstraction's C helpers in the repository, and where they go in the tree.
pub const HELPERS_SOURCE: &str = "luo-kmod/kernel/helpers/sysfs.c";
pub const HELPERS_PATH: &str = "rust/helpers/sysfs.c";
const ABSTRACTION_MODULE: &str = "kernel_sysfs";

/// The crates whose files the module compiles through `#[path]`.
const SHARED_CRATES: &[&str] = &["luo-state", "luo-sysfs-abi"];

/// The pristine files the series edits (it creates the others).
const EDITED: &[&str] = &[
    "MAINTAINERS",
    "include/linux/liveupdate.h",
    "kernel/liveupdate/Kconfig",
    "kernel/liveupdate/Makefile",
    "kernel/liveupdate/luo_core.c",
    "kernel/liveupdate/luo_internal.h",
    "kernel/liveupdate/luo_session.c",
    "rust/bindings/bindings_helper.h",
    "rust/helpers/helpers.c",
    "rust/kernel/lib.rs",
];

/// Mainline's observer hook, the C change of the series' first patch: a diff against the
/// pristine tree, kept in the repository as the one piece of the series written as a diff,
/// since it edits mainline's own files in place.
const OBSERVER_DIFF: &str = "luo-kmod/mainline/observer.diff";

/// How many patches the series has.
const PATCHES: usize = 3;

/// A generated series.
pub struct Series {
    /// The directory holding it.
    pub dir: PathBuf,
    /// The patches, in order, without the cover letter.
    pub patches: Vec<PathBuf>,
    /// The cover letter.
    pub cover: PathBuf,
}

impl Series {
    /// What the series changes in the tree: every patch's diff, without the mail headers and
    /// commit messages, so the kernel build it keys does not change with the author's identity.
    pub fn diffs(&self) -> Result<Vec<u8>> {
        let mut diffs = Vec::new();
        for patch in &self.patches {
            let text = read(patch)?;
            let start = text.find("\ndiff --git ").unwrap_or(text.len());
            diffs.extend_from_slice(&text.as_bytes()[start..]);
        }
        Ok(diffs)
    }
}

/// `cargo xtask patches [--out DIR]`.
pub fn run(out: Option<PathBuf>) -> Result {
    let out = out.unwrap_or_else(default_out);
    setup::run()?;
    let series = generate(&out)?;
    eprintln!("    the series, in {}:", series.dir.display());
    for patch in std::iter::once(&series.cover).chain(&series.patches) {
        eprintln!(
            "      {}",
            patch.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(())
}

/// Where the series goes by default.
pub fn default_out() -> PathBuf {
    cache::workspace().join("target/patches")
}

/// Writes the series to `out` (its earlier patches removed first).
pub fn generate(out: &Path) -> Result<Series> {
    run::step("patches: the in-tree series");
    let source = sources::source_tree()?;
    let version = setup::installed_version(setup::KERNEL_SOURCE_PACKAGE).unwrap_or_default();
    // A repository of this checkout's own: two checkouts generating at once (a developer's and
    // CI's, or two worktrees) would otherwise take each other's git index lock.
    let scratch = cache::scratch("patches")?;
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .map_err(|err| format!("cannot remove {}: {err}", scratch.display()))?;
    }
    let git = Git::new(&scratch, identity()?);
    std::fs::create_dir_all(&scratch)
        .map_err(|err| format!("cannot create {}: {err}", scratch.display()))?;
    git.run(&["init", "-q", "-b", "base"])?;
    for file in EDITED {
        let text = read(&source.join(file))?;
        write(&scratch.join(file), &text)?;
    }
    git.run(&["add", "-A"])?;
    git.commit(&format!(
        "Linux {} (the files the series edits)",
        tree_version(&source)?
    ))?;
    git.run(&["checkout", "-q", "-b", "luo-sysfs"])?;

    let diff = cache::workspace().join(OBSERVER_DIFF);
    git.run(&["apply", "--whitespace=error", &diff.to_string_lossy()])
        .map_err(|err| format!("{OBSERVER_DIFF} does not apply to the pristine files: {err}"))?;
    git.run(&["add", "-A"])?;
    git.commit(&git.signed(PATCH_OBSERVER))?;

    add_abstraction(&scratch)?;
    git.run(&["add", "-A"])?;
    git.commit(&git.signed(PATCH_ABSTRACTION))?;

    add_module(&source, &scratch)?;
    git.run(&["add", "-A"])?;
    git.commit(&git.signed(PATCH_MODULE))?;

    git.run(&[
        "config",
        "branch.luo-sysfs.description",
        &cover_letter(&tree_version(&source)?, &version),
    ])?;
    std::fs::create_dir_all(out)
        .map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    for entry in std::fs::read_dir(out).map_err(|err| format!("{}: {err}", out.display()))? {
        let path = entry
            .map_err(|err| format!("{}: {err}", out.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "patch") {
            std::fs::remove_file(&path)
                .map_err(|err| format!("cannot remove {}: {err}", path.display()))?;
        }
    }
    let out = out
        .canonicalize()
        .map_err(|err| format!("{}: {err}", out.display()))?;
    git.run(&[
        "-c",
        "core.abbrev=12",
        "format-patch",
        "-q",
        "--cover-letter",
        "--cover-from-description=subject",
        "--zero-commit",
        "-o",
        &out.to_string_lossy(),
        "base..luo-sysfs",
    ])?;
    let mut patches: Vec<PathBuf> = std::fs::read_dir(&out)
        .map_err(|err| format!("{}: {err}", out.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "patch"))
        .collect();
    patches.sort();
    let cover = out.join("0000-cover-letter.patch");
    patches.retain(|path| *path != cover);
    if !cover.is_file() || patches.len() != PATCHES {
        return Err(format!(
            "git format-patch wrote an unexpected series in {}",
            out.display()
        ));
    }
    Ok(Series {
        dir: out,
        patches,
        cover,
    })
}

/// Patch 2: `rust/kernel/sysfs.rs` with its C helpers, its module line, its header, its
/// maintainers.
fn add_abstraction(tree: &Path) -> Result {
    let workspace = cache::workspace();
    let abstraction = in_tree_abstraction(&read(&workspace.join(ABSTRACTION_SOURCE))?)?;
    write(&tree.join(ABSTRACTION_PATH), &abstraction)?;
    write(
        &tree.join(HELPERS_PATH),
        &read(&workspace.join(HELPERS_SOURCE))?,
    )?;
    edit(
        tree,
        "rust/helpers/helpers.c",
        "#include \"sync.c\"\n",
        "#include \"sync.c\"\n#include \"sysfs.c\"\n",
    )?;
    edit(
        tree,
        "rust/kernel/lib.rs",
        "pub mod sync;\n",
        "pub mod sync;\npub mod sysfs;\n",
    )?;
    edit(
        tree,
        "rust/bindings/bindings_helper.h",
        "#include <linux/sys_soc.h>\n",
        "#include <linux/sys_soc.h>\n#include <linux/sysfs.h>\n",
    )?;
    edit(
        tree,
        "MAINTAINERS",
        "F:\trust/kernel/soc.rs\n",
        "F:\trust/kernel/soc.rs\nF:\trust/kernel/sysfs.rs\n",
    )?;
    edit(
        tree,
        "MAINTAINERS",
        "F:\trust/kernel/debugfs.rs\n",
        &format!("F:\t{HELPERS_PATH}\nF:\trust/kernel/debugfs.rs\n"),
    )
}

/// The out-of-tree declarations of the C helpers, as the abstraction's file starts them: the
/// tree's bindings declare the helpers instead.
const OUT_OF_TREE_HELPERS: &str = "#[cfg(MODULE)]\nmod helpers {\n";
const IN_TREE_HELPERS: &str = "#[cfg(not(MODULE))]\nuse kernel::bindings as helpers;\n";

/// `kernel/sysfs.rs` as the tree compiles it: without the out-of-tree declarations of its C
/// helpers (and the comment above them), calling them through `bindings` as the rest of the
/// kernel crate does.
pub fn in_tree_abstraction(text: &str) -> Result<String> {
    let missing = |what: &str| format!("{ABSTRACTION_SOURCE}: {what} not found");
    let start = text
        .find(OUT_OF_TREE_HELPERS)
        .ok_or_else(|| missing("`#[cfg(MODULE)] mod helpers {`"))?;
    let end = text[start..]
        .find("\n}\n")
        .map(|end| start + end + "\n}\n".len())
        .ok_or_else(|| missing("the end of `mod helpers`"))?;
    if !text[end..].starts_with(IN_TREE_HELPERS) {
        return Err(missing(
            "`use kernel::bindings as helpers;` right after `mod helpers`",
        ));
    }
    // The comment lines that introduce the block go with it.
    let before = text[..start].trim_end_matches('\n');
    let comment = before
        .lines()
        .rev()
        .take_while(|line| line.starts_with("// "))
        .map(|line| line.len() + 1)
        .sum::<usize>();
    let head = &text[..before.len() - comment + 1];
    let tail = &text[end + IN_TREE_HELPERS.len()..];
    let tail = tail.strip_prefix('\n').unwrap_or(tail);
    Ok(format!("{head}{tail}").replace("helpers::", "bindings::"))
}

/// Patch 3: the module, its Kconfig option and Makefile, the ABI document, its maintainers.
fn add_module(source: &Path, tree: &Path) -> Result {
    let workspace = cache::workspace();
    let dir = tree.join(TREE_DIR);
    let root = read(&workspace.join("luo-kmod/src/luo.rs"))?;
    let (root, shared) = in_tree_root(&root)?;
    let mut written = Vec::new();
    for path in module::rust_sources()? {
        let relative = path
            .strip_prefix(workspace.join("luo-kmod"))
            .map_err(|_| format!("{} is outside luo-kmod", path.display()))?;
        let Ok(file) = relative.strip_prefix("src") else {
            // `kernel/`: the abstraction, which patch 1 placed in `rust/kernel/`.
            if relative != Path::new(ABSTRACTION_SOURCE.trim_start_matches("luo-kmod/")) {
                return Err(format!(
                    "luo-kmod/{} has no place in the series yet",
                    relative.display()
                ));
            }
            continue;
        };
        let text = if file == Path::new("luo.rs") {
            root.clone()
        } else {
            read(&path)?
        };
        let target = dir.join(file);
        write(&target, &rename_abstraction(&text))?;
        written.push(target);
    }
    for file in &shared {
        let text = read(&workspace.join(&file.source))?;
        let target = dir.join(format!("{}.rs", file.module));
        if target.exists() {
            return Err(format!(
                "{} would overwrite the module's own {}.rs",
                file.source, file.module
            ));
        }
        write(&target, &shared_header(&file.source, &text))?;
        written.push(target);
    }
    rustfmt(source, &written)?;
    // The build-time check of the Rust files' hand declarations against the C headers.
    write(
        &dir.join("decls.c"),
        &read(&workspace.join("luo-kmod/src/decls.c"))?,
    )?;
    write(
        &dir.join("Makefile"),
        &makefile(&read(&workspace.join("luo-kmod/Kbuild"))?)?,
    )?;
    edit(
        tree,
        "rust/bindings/bindings_helper.h",
        "#include <linux/jump_label.h>\n",
        "#include <linux/jump_label.h>\n#include <linux/liveupdate.h>\n",
    )?;
    edit(
        tree,
        "kernel/liveupdate/Makefile",
        "obj-$(CONFIG_LIVEUPDATE)\t\t+= luo.o\n",
        &format!("obj-$(CONFIG_LIVEUPDATE)\t\t+= luo.o\nobj-$(CONFIG_{OPTION})\t+= luo_sysfs/\n"),
    )?;
    edit(
        tree,
        "kernel/liveupdate/Kconfig",
        "\t  If unsure, say N.\n\nendmenu\n",
        &format!("\t  If unsure, say N.\n\n{KCONFIG}\nendmenu\n"),
    )?;
    let mut abi = String::new();
    luo_sysfs_abi::write_abi_doc(&mut abi).map_err(|err| format!("the ABI document: {err}"))?;
    write(&tree.join(abi_doc::PATH), &abi)?;
    edit(
        tree,
        "MAINTAINERS",
        "F:\ttools/testing/selftests/liveupdate/\n\n",
        &format!(
            "F:\ttools/testing/selftests/liveupdate/\n\n{}\n",
            maintainers()?
        ),
    )
}

/// A shared file named by a `#[path]` module of `luo.rs`.
#[derive(Debug, PartialEq, Eq)]
pub struct Shared {
    /// Its path in the repository, e.g. `luo-state/src/cell.rs`.
    pub source: String,
    /// The module name, which is also its file name in the tree.
    pub module: String,
}

/// `luo.rs` as the tree compiles it, and the shared files it names.
///
/// Each `#[path = "../../CRATE/src/NAME.rs"]` before `mod NAME;` (or `pub mod NAME;`) goes:
/// the file sits next to `luo.rs` in the tree, where `mod NAME;` finds it. The `#[path]` of the
/// abstraction goes with its `mod` line and the comment above them, since the kernel crate
/// provides it. Anything else is an error, so a new kind of line cannot slip through unchanged.
pub fn in_tree_root(text: &str) -> Result<(String, Vec<Shared>)> {
    let mut out: Vec<&str> = Vec::new();
    let mut shared = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("#[path = \"")
            .and_then(|rest| rest.strip_suffix("\"]"))
        else {
            out.push(line);
            continue;
        };
        let item = lines.next().unwrap_or_default();
        let module = item
            .strip_prefix("pub ")
            .unwrap_or(item)
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
            .ok_or_else(|| format!("luo.rs: `{line}` is not followed by a `mod` line"))?;
        if path == format!("../{}", ABSTRACTION_SOURCE.trim_start_matches("luo-kmod/")) {
            if module != ABSTRACTION_MODULE {
                return Err(format!(
                    "luo.rs: the abstraction is `mod {module}`, expected `{ABSTRACTION_MODULE}`"
                ));
            }
            while out
                .last()
                .is_some_and(|l| l.starts_with("//") && !l.starts_with("//!"))
            {
                out.pop();
            }
            // The blank line that separated the comment from what came before.
            if out.last().is_some_and(|l| l.is_empty()) {
                out.pop();
            }
            continue;
        }
        let source = path.strip_prefix("../../").unwrap_or_default();
        let named_after_module = SHARED_CRATES
            .iter()
            .any(|krate| source == format!("{krate}/src/{module}.rs"));
        if !named_after_module {
            return Err(format!(
                "luo.rs: `{line}` / `{item}` is not a shared file of {SHARED_CRATES:?} named \
                 after its module"
            ));
        }
        shared.push(Shared {
            source: source.to_owned(),
            module: module.to_owned(),
        });
        out.push(item);
    }
    let mut root = out.join("\n");
    root.push('\n');
    Ok((rename_abstraction(&root), shared))
}

/// The module's name for the abstraction, replaced by the kernel crate's.
fn rename_abstraction(text: &str) -> String {
    text.replace(&format!("crate::{ABSTRACTION_MODULE}"), "kernel::sysfs")
}

/// A shared file as the tree carries it: an SPDX line (the repository's files are
/// GPL-2.0-only as a whole and carry none) and where the file comes from.
pub fn shared_header(source: &str, text: &str) -> String {
    format!(
        "// SPDX-License-Identifier: GPL-2.0\n\
         //\n\
         // Shared, unchanged, with the userspace crates of the luo project:\n\
         // {source}.\n\
         \n\
         {text}"
    )
}

/// The tree's `Makefile` for the module: built in under the option, with the flags
/// `luo-kmod/Kbuild` gives the out-of-tree build.
fn makefile(kbuild: &str) -> Result<String> {
    let flags: Vec<&str> = kbuild
        .lines()
        .filter(|line| line.starts_with("rustflags-y"))
        .collect();
    if flags.is_empty() {
        return Err("luo-kmod/Kbuild sets no rustflags-y; the in-tree Makefile needs them".into());
    }
    Ok(format!(
        "# SPDX-License-Identifier: GPL-2.0\n\
         #\n\
         # The crate root is luo.rs; the files shared with the luo userspace crates sit next to\n\
         # it, and `--cfg luo_kernel` makes sync.rs use the kernel's atomics and barriers.\n\
         # `--cfg luo_mainline` builds the observer of mainline's orchestrator, and\n\
         # `--cfg luo_selftest` the debugfs test hook.\n\
         \n\
         obj-y += luo.o decls.o\n\
         \n\
         {}\n\
         rustflags-$(CONFIG_LIVEUPDATE) += --cfg luo_mainline\n\
         rustflags-$(CONFIG_LIVEUPDATE_SYSFS_API_TEST) += --cfg luo_selftest\n",
        flags.join("\n")
    ))
}

/// Formats the generated Rust files as the tree wants (renaming a path can reorder imports).
fn rustfmt(source: &Path, files: &[PathBuf]) -> Result {
    run::run(
        Command::new("rustfmt")
            .args(["--edition", "2021", "--config-path"])
            .arg(source.join(".rustfmt.toml"))
            .args(files),
    )
}

/// The Kconfig entry.
const KCONFIG: &str = "\
config LIVEUPDATE_SYSFS_API
\tbool \"Live Update Orchestrator v3 with a pollable sysfs state (Rust)\"
\tdepends on SYSFS && RUST
\thelp
\t  A pollable state for live updates, written in Rust.
\t  /sys/kernel/liveupdate/state shows the state (normal, prepared,
\t  frozen, updated) and notifies every change, so agents can poll()
\t  it; /sys/kernel/liveupdate/generation numbers the live update.

\t  When the kernel is booted with liveupdate=on, the session-based
\t  orchestrator (LIVEUPDATE) owns /dev/liveupdate, and the state is
\t  derived from its sessions: prepared while a file is preserved,
\t  frozen once the kexec serialized them, updated while a file handed
\t  over by the previous kernel is not finished. The generation is that
\t  orchestrator's live update number.

\t  Otherwise the state machine of the orchestrator's v3 design runs
\t  on its own: /dev/liveupdate takes the GET_STATE and SET_EVENT
\t  ioctls, a kexec reboot from the prepared state freezes, and the
\t  generation counts the live updates since a cold boot. The
\t  kernel started by a live update learns of it from a record in
\t  kexec handover memory, at boot, before userspace runs. That needs
\t  KEXEC_HANDOVER, enabled at run time, in both kernels; without it
\t  the state works, but every boot comes up normal.

\t  It needs Linux 7.3 or later, whose Rust MiscDevice abstraction
\t  sets the module owner of /dev/liveupdate.

\t  If unsure, say N.

config LIVEUPDATE_SYSFS_API_TEST
\tbool \"Test hook for the pollable live update state\"
\tdepends on LIVEUPDATE_SYSFS_API && DEBUG_FS
\thelp
\t  Builds the test hook of LIVEUPDATE_SYSFS_API. With luo.selftest=1
\t  on the command line, the debugfs file liveupdate/luo_selftest
\t  freezes without a kexec and damages the outgoing handover record,
\t  so tests can check both kernels of a live update. Creating the
\t  file taints the kernel (TAINT_TEST). Without this option,
\t  luo.selftest=1 keeps luo from starting.

\t  Say N unless you run the luo tests.
";

/// The maintainers entry for the module.
fn maintainers() -> Result<String> {
    let (name, email) = identity()?;
    Ok(format!(
        "LIVE UPDATE V3 SYSFS STATE INTERFACE (RUST)\n\
         M:\t{name} <{email}>\n\
         L:\tkexec@lists.infradead.org\n\
         L:\trust-for-linux@vger.kernel.org\n\
         S:\tMaintained\n\
         F:\t{}\n\
         F:\t{TREE_DIR}/\n",
        abi_doc::PATH
    ))
}

const PATCH_OBSERVER: &str = "\
liveupdate: let a built-in observer follow the sessions

The orchestrator keeps files alive across a kexec in sessions, but
shows nothing of where a live update stands: whether anything is
preserved, whether the kexec serialized the sessions, whether this
boot still holds files that the previous kernel handed over. An agent
that wants to know polls for it, or tries RETRIEVE_SESSION on the names
it knows.

Add an observer chain that a built-in can register on, and call it at
the four points that change the answer:

  LIVEUPDATE_OBSERVE_PRESERVED    a file was preserved
  LIVEUPDATE_OBSERVE_UNPRESERVED  an outgoing session was closed
  LIVEUPDATE_OBSERVE_FINISHED     an incoming session holding files
                                  was finished, or closed once
                                  retrieved
  LIVEUPDATE_OBSERVE_SERIALIZED   liveupdate_reboot() succeeded

with the number of files concerned. A finished session holds no
files, so closing it after FINISH reports nothing again.

Incoming sessions are unpacked only when /dev/liveupdate is first
opened, so liveupdate_incoming_files() gives their files as counted
from the serialized blocks at boot, and liveupdate_number() gives the
live update number that the orchestrator logs. An observer registers
from an initcall, before userspace can create a session, and misses
nothing.

The chain is a blocking notifier called with the session's locks held,
and after a successful serialization with its rwsem held for good; an
observer's own lock is therefore innermost, and it must not call back
into the orchestrator.
";

const PATCH_ABSTRACTION: &str = "\
rust: sysfs: add read-only attribute groups that show typed data

Add a small abstraction for a directory of read-only sysfs attributes
under an existing kobject, as C users of sysfs_create_group() with a
named group make one, whose show() callbacks read the data the
registration owns.

An Attribute<Data> declares a file: its name, its mode, the type
whose AttributeOperations::show() renders it, and a lock class key,
usually static_lock_class!(). Under CONFIG_DEBUG_LOCK_ALLOC the key
becomes the attribute's key, as sysfs_attr_init() sets a static key of
its own, so the files of different declarations get different lockdep
classes for their active references, as different C attributes do.
A Registration<Data, N>
owns the data and builds, in one pinned allocation next to it, the
kobj_attributes, their NULL-terminated list and the attribute_group
that sysfs reads; each attribute keeps a pointer back to the data, so
show() gets a &Data. sysfs_remove_group() in Drop waits for running
show() calls and none starts after it, so the data is dropped after
its last reader.

show() writes through a ShowBuffer, a bounded writer over sysfs's page
that implements core::fmt::Write, and whose write_with() lets a
function render into the rest of the page in place. It holds at most
PAGE_SIZE - 1 bytes, as sysfs_emit() writes: sysfs_kf_seq_show()
warns about a count of PAGE_SIZE or more and cuts it to PAGE_SIZE - 1.
A write that does not fit fails with EFBIG, which the reader gets,
instead of a file cut short.

A Notifier wakes the pollers of one file, as sysfs_notify_dirent()
does. It holds a reference to the file's kernfs node, so it may
outlive the registration. That matters at removal: kernfs wakes no
poller when it removes a file without mmap or release, so a poller
that read the last value and polled again would sleep on. Notifying
the removed file wakes it, and kernfs answers its poll, and every later
one, with EPOLLERR | EPOLLPRI, because the node is no longer active.

The sysfs inlines (sysfs_notify_dirent(), sysfs_get_dirent(),
sysfs_put()) get helpers in rust/helpers/sysfs.c. So do the
assignments of kobj_attribute's show and attribute_group's attrs: both
sit in an anonymous union, or a struct under CONFIG_CFI, which bindgen
names by position.

The shape follows rust/kernel/configfs.rs: operations tied to their
attribute by a type parameter, one trampoline per callback, the
owner's typed data handed to show(), and a registration type that owns
the C registration.

The first user is the live update state file added next in this
series. Writable and binary attributes, is_visible() and device
attributes are left out until a user needs them.
";

const PATCH_MODULE: &str = "\
liveupdate: luo_sysfs: add a pollable live update state

Add the sysfs state file that v3 proposed in \"liveupdate: luo_sysfs:
add sysfs state monitoring\", as a Rust built-in, in two flavours
chosen at boot:

  /sys/kernel/liveupdate/state       normal, prepared, frozen or
                                     updated; notified on every
                                     change, so agents poll() it
  /sys/kernel/liveupdate/generation  the live update's number

With liveupdate=on, the session-based orchestrator owns
/dev/liveupdate, and the state is derived from its sessions through
the observer chain of the previous patch, by precedence: frozen once
the kexec serialized them, else updated while a file handed over by
the previous kernel is neither finished nor closed, else prepared
while a file is preserved, else normal. Empty sessions count for
nothing: the orchestrator hands its data over on every kexec, so a
kexec that preserved no file comes up normal. The generation is the
orchestrator's live update number. An agent learns from one poll()
that a live update is under way or came back, without knowing the
session names, and a boot that never claims a session stays updated,
visibly, instead of leaking its memory silently.

Without it, the state machine of the v3 design runs on its own:

  /dev/liveupdate                    the GET_STATE and SET_EVENT
                                     ioctls of v3

A kexec reboot from prepared freezes (a reboot notifier runs before
machine_kexec()), and the state at the jump travels to the next kernel
in a 32-byte record in kexec handover (KHO) memory. The new kernel
reads it in its device initcall, before userspace starts, and comes up
updated, with the generation counted up, until userspace sends FINISH.
Without KEXEC_HANDOVER every boot comes up normal.

Differences from v3:
- The setter orders its store of the state before the notify with
  smp_wmb(), and show() orders its load after kernfs sampled the event
  counter with smp_rmb(). v3's WRITE_ONCE()/READ_ONCE() pair lets a
  poller read the old word with the new counter and then sleep until
  the next change, which may never come.
- Ioctl argument sizes past PAGE_SIZE are refused with E2BIG before
  any byte of the tail is read, as perf_event_open() and
  sched_setattr() do; v3 scans a tail of any size.
- The generation attribute is new.
- The v3 test hook, debugfs liveupdate/luo_selftest, which freezes
  without a kexec, is built only with LIVEUPDATE_SYSFS_API_TEST,
  created only with luo.selftest=1, and taints the kernel.

The two flavours hand over different data, so a kexec from one into
the other is not a live update for the second: it comes up normal.

The files that hold the states, events, transitions, ioctl checks,
the handover record and the bytes shown are shared, unchanged, with
the userspace library of the luo project, which builds them as no_std
crates; --cfg luo_kernel selects the kernel's atomics and barriers in
sync.rs. The ABI document is generated from the same sources.
";

/// The cover letter: its first paragraph is the subject (`--cover-from-description=subject`).
fn cover_letter(tree: &str, package: &str) -> String {
    format!(
        "liveupdate: a pollable live update state, in Rust

This series adds a state for live updates, under
CONFIG_{OPTION}: /sys/kernel/liveupdate/state shows
normal, prepared, frozen or updated and notifies each change, so
agents poll() it.

Sessions say what survives a kexec; they do not say where the live
update stands. An agent that restores a VM wants to learn, before it
knows any session name, that this boot came from a live update and
still holds memory to claim; a monitor wants to see that a host is
prepared, and that a boot was left updated because nobody claimed its
sessions. One global state answers that with one poll(), and the
state word is the v3 design's.

With liveupdate=on, the state is derived from the session-based
orchestrator's sessions, and generation is its live update number.
Without it, the v3 state machine runs on its own, with its ioctls on
/dev/liveupdate and its own 32-byte record in kexec handover.

Patch 1 adds an observer chain to the orchestrator, called when a file
is preserved, an outgoing session closed, an incoming session finished
or closed, and the sessions serialized. Patch 2 adds kernel::sysfs, a
small abstraction for groups of read-only attributes whose show() gets
the typed data the registration owns and a bounded writer, with a
notifier that can wake pollers even after the group is gone. Patch 3
adds the state as its first user, with its Kconfig option, the ABI
document and a MAINTAINERS entry.

The series is generated by `cargo xtask patches` of the luo project,
from the same files the project builds as an out-of-tree module and,
for the shared state machine, as userspace crates. Its `cargo xtask
test` applies it with git am to Linux {tree} (Debian's
linux-source-7.3 {package}), runs checkpatch.pl --strict, builds
it with the option on and CLIPPY=1, and runs its guest tests against
the built-in under QEMU (x86_64, two CPUs, lockdep): layout,
transitions, errors, poll, model, and a live update across kexec; with
liveupdate=on, the orchestrator's own selftests pass unchanged while a
watcher checks every change it sees, and a 256 MiB memfd survives a
live update while the state goes through prepared and updated.
"
    )
}

/// The tree's version from its Makefile, e.g. `7.3.4`.
pub fn tree_version(source: &Path) -> Result<String> {
    let makefile = read(&source.join("Makefile"))?;
    let field = |name: &str| {
        makefile
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .trim()
                    .strip_prefix('=')
                    .map(str::trim)
            })
            .unwrap_or_default()
            .to_owned()
    };
    let version = format!(
        "{}.{}.{}",
        field("VERSION"),
        field("PATCHLEVEL"),
        field("SUBLEVEL")
    );
    if version.starts_with('.') {
        return Err(format!("no VERSION in {}/Makefile", source.display()));
    }
    Ok(version)
}

/// Replaces the one occurrence of `anchor` in the tree's `file`.
fn edit(tree: &Path, file: &str, anchor: &str, replacement: &str) -> Result {
    let path = tree.join(file);
    let text = read(&path)?;
    if text.matches(anchor).count() != 1 {
        return Err(format!(
            "{file}: expected exactly one {anchor:?} to edit; is the tree Linux 7.3?"
        ));
    }
    write(&path, &text.replacen(anchor, replacement, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_loses_every_path_attribute_and_the_abstraction() {
        let root = read(&cache::workspace().join("luo-kmod/src/luo.rs")).unwrap();
        let (in_tree, shared) = in_tree_root(&root).unwrap();
        assert!(
            !in_tree.lines().any(|line| line.starts_with("#[path")),
            "{in_tree}"
        );
        assert!(!in_tree.contains(ABSTRACTION_MODULE), "{in_tree}");
        assert!(in_tree.contains("pub mod cell;"));
        assert!(in_tree.contains("mod sync;"));
        assert!(shared.contains(&Shared {
            source: "luo-state/src/cell.rs".to_owned(),
            module: "cell".to_owned()
        }));
        assert!(
            shared
                .iter()
                .any(|file| file.source == "luo-sysfs-abi/src/show.rs")
        );
    }

    #[test]
    fn every_shared_file_exists_and_none_shadows_a_module_file() {
        let root = read(&cache::workspace().join("luo-kmod/src/luo.rs")).unwrap();
        let (_, shared) = in_tree_root(&root).unwrap();
        for file in shared {
            assert!(
                cache::workspace().join(&file.source).is_file(),
                "{}",
                file.source
            );
            let own = cache::workspace().join(format!("luo-kmod/src/{}.rs", file.module));
            assert!(
                !own.exists(),
                "{} would clash with {}",
                file.source,
                own.display()
            );
        }
    }

    #[test]
    fn a_path_whose_file_is_not_named_after_its_module_is_refused() {
        let root = "#[path = \"../../luo-state/src/cell.rs\"]\npub mod state_cell;\n";
        assert!(in_tree_root(root).is_err());
    }

    #[test]
    fn a_path_outside_the_shared_crates_is_refused() {
        let root = "#[path = \"../../luo-user/src/lib.rs\"]\nmod lib;\n";
        assert!(in_tree_root(root).is_err());
    }

    #[test]
    fn the_abstraction_comment_goes_with_its_lines() {
        let root = "mod a;\n\n// Why.\n// More why.\n#[path = \"../kernel/sysfs.rs\"]\n\
                    pub mod kernel_sysfs;\n\nmod b;\nuse crate::kernel_sysfs::Notifier;\n";
        let (in_tree, shared) = in_tree_root(root).unwrap();
        assert_eq!(in_tree, "mod a;\n\nmod b;\nuse kernel::sysfs::Notifier;\n");
        assert!(shared.is_empty());
    }

    #[test]
    fn the_abstraction_calls_its_helpers_through_the_bindings_in_the_tree() {
        let text = read(&cache::workspace().join(ABSTRACTION_SOURCE)).unwrap();
        let in_tree = in_tree_abstraction(&text).unwrap();
        for gone in [
            "MODULE",
            "mod helpers",
            "helpers::",
            "link_name",
            "rust_helper_",
        ] {
            assert!(
                !in_tree.contains(gone),
                "{gone} is still in the tree's file"
            );
        }
        assert!(in_tree.contains("bindings::sysfs_notify_dirent("));
        assert!(!in_tree.contains("\n\n\n"), "a blank line is left twice");
    }

    #[test]
    fn the_helpers_block_goes_with_its_comment_and_nothing_else() {
        let text = "use a;\n\n// Why.\n// More.\n#[cfg(MODULE)]\nmod helpers {\n    fn f();\n}\n\
                    #[cfg(not(MODULE))]\nuse kernel::bindings as helpers;\n\nfn g() { helpers::f() }\n";
        assert_eq!(
            in_tree_abstraction(text).unwrap(),
            "use a;\n\nfn g() { bindings::f() }\n"
        );
        assert!(in_tree_abstraction("use a;\n").is_err());
    }

    #[test]
    fn the_makefile_takes_the_out_of_tree_flags() {
        let kbuild = "obj-m := luo.o\nluo-y := src/luo.o\n\nrustflags-y += --cfg luo_kernel\n";
        let text = makefile(kbuild).unwrap();
        assert!(text.contains("obj-y += luo.o decls.o\n"));
        assert!(text.contains("rustflags-y += --cfg luo_kernel\n"));
        assert!(
            text.contains("rustflags-$(CONFIG_LIVEUPDATE_SYSFS_API_TEST) += --cfg luo_selftest\n")
        );
        assert!(makefile("obj-m := luo.o\n").is_err());
    }

    #[test]
    fn commit_messages_wrap_at_72() {
        for message in [
            PATCH_ABSTRACTION,
            PATCH_MODULE,
            &cover_letter("7.3.4", "7.3.4-1~bpo13+1"),
        ] {
            for line in message.lines() {
                assert!(line.chars().count() <= 72, "{line:?}");
            }
        }
    }
}
