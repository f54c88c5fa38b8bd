//! `luoctl kexec`: the live update kexec, a thin layer over `luo_user::kexec`.

use std::io::{self, Write};

use luo_user::keeper::Client;
use luo_user::kexec::{self, CommandLine, Request};

use crate::cli::KexecArgs;
use crate::exit::Failure;

/// Loads the next kernel, then (unless `--load-only`) reboots into it; returns only on
/// failure, or after loading with `--load-only`. Prints nothing on stdout.
pub fn run(args: &KexecArgs) -> Result<(), Failure> {
    // The command line first: a line that is too long is refused before anything is read.
    let command_line = if args.reuse_cmdline {
        let running = kexec::running_command_line_from(&args.cmdline_file)?;
        CommandLine::reuse(&running, &args.append)
    } else {
        CommandLine::new(&args.append)
    }
    .map_err(luo_user::Error::from)?;
    let mut request = Request::new(&args.kernel, command_line).with_debugfs(&args.debugfs);
    if let Some(initrd) = &args.initrd {
        request = request.with_initrd(initrd);
    }
    let state = args.state.open()?;
    // Every check first (the state, KHO, the files, the command line's length): a mistake is
    // reported at once, not after the wait for the hooks.
    let checked = kexec::check(&state, &request)?;
    if !args.no_wait {
        wait_for_hooks(args)?;
    }
    checked.load()?;
    let mut err = io::stderr().lock();
    if args.load_only {
        writeln!(
            err,
            "luoctl: loaded {} for a live update (command line: {}); 'systemctl kexec' or \
             'luoctl kexec' reboots into it",
            args.kernel.display(),
            request.command_line
        )?;
        return Ok(());
    }
    writeln!(err, "luoctl: kexec into {}", args.kernel.display())?;
    err.flush()?;
    drop(err);
    Err(kexec::reboot(&state).into())
}

/// Waits until the agent says the prepared hooks of this `prepared` state all succeeded.
fn wait_for_hooks(args: &KexecArgs) -> Result<(), Failure> {
    let socket = &args.socket.socket;
    let client = Client::connect(socket)?;
    eprintln!(
        "luoctl: waiting for the agent's prepared hooks (at most {}; --no-wait skips this)",
        args.wait_timeout
    );
    let mark = client.wait_ready(args.wait_timeout.into())?;
    let at = mark
        .transitions
        .map_or_else(String::new, |n| format!(" (transition {n})"));
    eprintln!("luoctl: the prepared hooks succeeded{at}");
    Ok(())
}
