//! The generator of `Documentation/ABI/testing/sysfs-kernel-liveupdate`.
//!
//! The file follows the kernel's ABI format (`Documentation/ABI/README`): one entry per path
//! with `What`, `Date`, `KernelVersion`, `Contact` and `Description`, fields indented with
//! tabs. The entries come from [`ATTRIBUTES`] and the list of states from
//! [`State::OBSERVABLE`], so neither a new attribute nor a new state can be added without
//! saying here what it means.

use core::fmt::{self, Write};

use crate::path::{Attribute, ATTRIBUTES, GENERATION, STATE, SYSFS_DIR};
use crate::State;

const DATE: &str = "November 2026";
const KERNEL_VERSION: &str = "7.3 (out-of-tree module luo.ko)";
const CONTACT: &str = "The luo developers";

/// What a state means to the agent that watches the file, wrapped for the ABI file.
fn describe(state: State) -> &'static [&'static str] {
    match state {
        State::Undefined => &["The orchestrator has not initialised yet; never shown."],
        State::Normal => &[
            "No live update is under way: the state after boot,",
            "after a cancel, and after a finish.",
        ],
        State::Prepared => &[
            "Userspace asked for a live update (the PREPARE",
            "event on /dev/liveupdate). Workloads still run; an",
            "agent saves what the next kernel needs. A kexec",
            "reboot now freezes; a CANCEL returns to normal.",
        ],
        State::Frozen => &[
            "A kexec reboot has begun: the blackout window.",
            "Workloads must already be suspended. Normally the",
            "next kernel starts soon; if the kexec fails, the",
            "state stays here until a CANCEL.",
        ],
        State::Updated => &[
            "This kernel was started by a live update and found",
            "the previous kernel frozen at the jump in its",
            "handover. Agents restore their workloads, then",
            "send FINISH to return to normal.",
        ],
    }
}

fn entry_head(out: &mut impl Write, what: impl fmt::Display) -> fmt::Result {
    writeln!(out, "What:\t\t{what}")?;
    writeln!(out, "Date:\t\t{DATE}")?;
    writeln!(out, "KernelVersion:\t{KERNEL_VERSION}")?;
    writeln!(out, "Contact:\t{CONTACT}")
}

/// The `Description` of one attribute, its mode taken from the table.
fn write_description(out: &mut impl Write, attr: Attribute) -> fmt::Result {
    write!(out, "Description:\tRead-only (mode {:04o}). ", attr.mode)?;
    if attr.name == STATE.name {
        write_state_description(out)
    } else if attr.name == GENERATION.name {
        out.write_str(concat!(
            "Reading returns how many live\n",
            "\t\tupdates this machine has gone through since its last\n",
            "\t\tcold boot, in decimal followed by a newline: 0 after a\n",
            "\t\tcold boot, 1 in the kernel started by the first live\n",
            "\t\tupdate, and so on. A kexec that is not a live update\n",
            "\t\tcarries the count over unchanged. The value is fixed\n",
            "\t\tfor the life of a kernel, so it is never notified.\n",
            "\t\tIt travels from kernel to kernel in kexec handover\n",
            "\t\t(KHO) memory, with the state at the jump.\n",
        ))
    } else {
        Err(fmt::Error)
    }
}

fn write_state_description(out: &mut impl Write) -> fmt::Result {
    out.write_str(concat!(
        "Reading returns the current state\n",
        "\t\tof the orchestrator as one word followed by a newline.\n",
        "\t\tEvery change of state is notified, so a watcher can\n",
        "\t\tpoll() the open file for POLLPRI (reported together\n",
        "\t\twith POLLERR), then read it again from offset 0.\n",
        "\t\tChanges between two reads coalesce: a watcher sees\n",
        "\t\tthe state at the time of its read, not every step.\n",
        "\t\tWhen the interface goes away (the module unloads),\n",
        "\t\tpollers are woken, reads fail with ENODEV, and later\n",
        "\t\tpolls return at once. Words other than the ones\n",
        "\t\tbelow may be added; readers should treat an unknown\n",
        "\t\tword as an error, not as one of these. The words:\n",
    ))?;
    for state in State::OBSERVABLE {
        out.write_str("\n")?;
        let word = state.word();
        for (i, line) in describe(state).iter().enumerate() {
            let label = if i == 0 { word } else { "" };
            // The text starts at column 32 (tab stops of 8): two tabs after a label shorter
            // than a tab stop, one after a label that fills it.
            let pad = if label.len() < 8 { "\t\t" } else { "\t" };
            writeln!(out, "\t\t{label}{pad}{line}")?;
        }
    }
    Ok(())
}

/// Writes the whole ABI document.
pub fn write_abi_doc(out: &mut impl Write) -> fmt::Result {
    // ABI files name a directory with a trailing slash.
    entry_head(out, format_args!("{SYSFS_DIR}/"))?;
    out.write_str(concat!(
        "Description:\tThe live update orchestrator's monitoring interface.\n",
        "\t\tA live update replaces the running kernel through kexec\n",
        "\t\twhile chosen devices and memory stay alive, so that\n",
        "\t\tvirtual machines survive a hypervisor update. The\n",
        "\t\tcontrol path is the character device /dev/liveupdate;\n",
        "\t\tthis directory only reports.\n",
    ))?;
    for attr in ATTRIBUTES {
        out.write_str("\n")?;
        entry_head(out, attr.path)?;
        write_description(out, attr)?;
    }
    Ok(())
}
