//! The generator of `Documentation/ABI/testing/sysfs-kernel-liveupdate`.
//!
//! The file follows the kernel's ABI format (`Documentation/ABI/README`): one entry per path
//! with `What`, `Date`, `KernelVersion`, `Contact` and `Description`, fields indented with
//! tabs. The entries come from [`ATTRIBUTES`] and the list of states from
//! [`State::OBSERVABLE`], so neither a new attribute nor a new state can be added without
//! saying here what it means.

use core::fmt::{self, Write};

use crate::path::{Attribute, ATTRIBUTES, FLAVOUR, GENERATION, STATE, SYSFS_DIR, TRANSITIONS};
use crate::{Flavour, State};

const DATE: &str = "November 2026";
const KERNEL_VERSION: &str = "7.3";
const CONTACT: &str = "The luo developers";

/// What a state means to the agent that watches the file, wrapped for the ABI file: in the
/// standalone flavour, then in the observer flavour.
fn describe(state: State) -> &'static [&'static str] {
    match state {
        State::Undefined => &["The orchestrator has not initialised yet; never shown."],
        State::Normal => &[
            "No live update is under way: the state after boot,",
            "after a cancel, and after a finish. Observer: no",
            "file is preserved or waits to be claimed.",
        ],
        State::Prepared => &[
            "Userspace asked for a live update (the PREPARE",
            "event on /dev/liveupdate). Workloads still run; an",
            "agent saves what the next kernel needs. A kexec",
            "reboot now freezes; a CANCEL returns to normal.",
            "Observer: a file is preserved in an outgoing",
            "session; closing the sessions returns to normal.",
        ],
        State::Frozen => &[
            "A kexec reboot has begun: the blackout window.",
            "Workloads must already be suspended. Normally the",
            "next kernel starts soon; if the kexec fails, the",
            "state stays here until a CANCEL. Observer: the",
            "kexec serialized the sessions; this is final.",
        ],
        State::Updated => &[
            "This kernel was started by a live update and found",
            "the previous kernel frozen at the jump in its",
            "handover. Agents restore their workloads, then",
            "send FINISH to return to normal. Observer: a file",
            "handed over by the previous kernel is neither",
            "finished nor closed; retrieving its session and",
            "closing it ends this even when nobody restores it.",
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
            "Reading returns the number of this\n",
            "\t\tkernel's live update, in decimal followed by a newline.\n",
            "\t\tThe value is fixed for the life of a kernel, so it is\n",
            "\t\tnever notified. What it counts depends on the flavour:\n",
            "\n",
            "\t\tstandalone\tthe live updates since the last cold boot:\n",
            "\t\t\t\t0 after a cold boot, 1 in the kernel started\n",
            "\t\t\t\tby the first live update, and so on. A kexec\n",
            "\t\t\t\tthat is not a live update carries the count\n",
            "\t\t\t\tover unchanged. It travels in kexec handover\n",
            "\t\t\t\t(KHO) memory, with the state at the jump.\n",
            "\t\tobserver\tthe session-based orchestrator's live update\n",
            "\t\t\t\tnumber, the one it logs at boot: it rises on\n",
            "\t\t\t\tevery kexec with KHO from a kernel where that\n",
            "\t\t\t\torchestrator was on, sessions or not, and is 0\n",
            "\t\t\t\twhen the previous kernel handed none over.\n",
        ))
    } else if attr.name == FLAVOUR.name {
        write_flavour_description(out)
    } else if attr.name == TRANSITIONS.name {
        out.write_str(concat!(
            "Reading returns how many times the\n",
            "\t\tstate changed since the orchestrator started in this\n",
            "\t\tboot, in decimal followed by a newline: 0 in the state\n",
            "\t\ta boot starts in, one more at every change. In the\n",
            "\t\tobserver flavour every change of the derived state\n",
            "\t\tcounts. It starts again at 0 when the module is loaded\n",
            "\t\tagain. It is notified on every change, just before\n",
            "\t\tstate is, and the count changes together with the\n",
            "\t\tstate, as one value. So a watcher can tell how many\n",
            "\t\tchanges it missed between two reads, even changes that\n",
            "\t\tcoalesced into one notification or into none (prepared\n",
            "\t\tto normal to prepared). The reader's protocol: read\n",
            "\t\ttransitions, then state, then transitions again. When\n",
            "\t\tthe two counts agree, the state is exactly the state\n",
            "\t\tthat count reached; otherwise a change came in between:\n",
            "\t\tread again. A count read before the state is never\n",
            "\t\tpaired with an older state; read in the other order, it\n",
            "\t\tcan be.\n",
        ))
    } else {
        Err(fmt::Error)
    }
}

/// What each flavour means.
fn describe_flavour(flavour: Flavour) -> &'static [&'static str] {
    match flavour {
        Flavour::Standalone => &[
            "The v3 state machine runs on its own: the",
            "character device /dev/liveupdate takes its",
            "GET_STATE and SET_EVENT ioctls.",
        ],
        Flavour::Observer => &[
            "The session-based orchestrator (the kernel booted",
            "with liveupdate=on) owns /dev/liveupdate; the",
            "state is derived from its sessions and nothing",
            "here changes it.",
        ],
    }
}

fn write_flavour_description(out: &mut impl Write) -> fmt::Result {
    out.write_str(concat!(
        "Reading returns who runs the live\n",
        "\t\tupdate that state shows, as one word followed by a\n",
        "\t\tnewline; it is fixed for the life of a kernel. Tell the\n",
        "\t\tflavours apart by this file, never by trying ioctls. A\n",
        "\t\tkexec from one flavour into the other is not a live\n",
        "\t\tupdate for the second: it comes up normal. The words:\n",
    ))?;
    for flavour in Flavour::ALL {
        out.write_str("\n")?;
        write_labelled(out, flavour.word(), describe_flavour(flavour))?;
    }
    Ok(())
}

/// `lines` under `label`, the text at column 32.
fn write_labelled(out: &mut impl Write, label: &str, lines: &[&str]) -> fmt::Result {
    for (i, line) in lines.iter().enumerate() {
        let label = if i == 0 { label } else { "" };
        // The text starts at column 32 (tab stops of 8): two tabs after a label shorter
        // than a tab stop, one after a label that fills it.
        let pad = if label.len() < 8 { "\t\t" } else { "\t" };
        writeln!(out, "\t\t{label}{pad}{line}")?;
    }
    Ok(())
}

fn write_state_description(out: &mut impl Write) -> fmt::Result {
    out.write_str(concat!(
        "Reading returns the current state\n",
        "\t\tof the orchestrator as one word followed by a newline.\n",
        "\t\tEvery change of state is notified, so a watcher can\n",
        "\t\tpoll() the open file for POLLPRI (reported together\n",
        "\t\twith POLLERR), then read it again from offset 0.\n",
        "\t\tChanges between two reads coalesce: a watcher sees\n",
        "\t\tthe state at the time of its read, not every step;\n",
        "\t\ttransitions counts every step.\n",
        "\t\tWhen the interface goes away (the module unloads),\n",
        "\t\tpollers are woken, reads fail with ENODEV, and later\n",
        "\t\tpolls return at once. Words other than the ones\n",
        "\t\tbelow may be added; readers should treat an unknown\n",
        "\t\tword as an error, not as one of these. The observer\n",
        "\t\tflavour (see flavour) derives the state by precedence:\n",
        "\t\tfrozen, then updated, then prepared, then normal, and\n",
        "\t\tmay also move from normal or updated to frozen and from\n",
        "\t\tupdated to prepared. The words:\n",
    ))?;
    for state in State::OBSERVABLE {
        out.write_str("\n")?;
        write_labelled(out, state.word(), describe(state))?;
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
        "\t\tthis directory only reports, in one of two flavours\n",
        "\t\t(see flavour): luo's own v3 state machine, or the state\n",
        "\t\tof a live update that the session-based orchestrator\n",
        "\t\truns.\n",
    ))?;
    for attr in ATTRIBUTES {
        out.write_str("\n")?;
        entry_head(out, attr.path)?;
        write_description(out, attr)?;
    }
    Ok(())
}
