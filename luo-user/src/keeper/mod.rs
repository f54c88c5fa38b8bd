//! The keeper: `luoctl agent` holds the workloads' files across the live update, and tells
//! `luoctl kexec` when the prepared hooks are done.
//!
//! A mainline session lives only while its fd is open, and hooks are short-lived, so someone
//! long-lived must hold the sessions until the kexec: the agent. Only one process may hold
//! `/dev/liveupdate`, and systemd and the selftests want it too, so the agent opens it for each
//! operation and keeps only the session fds.
//!
//! The workloads talk to the agent over a local socket ([`DEFAULT_SOCKET`], `SOCK_SEQPACKET`),
//! with files passed as `SCM_RIGHTS` (see [`protocol`] for the messages):
//! 1. before the live update, a workload hands its files over with [`Client::keep`] and keeps
//!    its connection open;
//! 2. `luoctl prepare` ([`Client::prepare`], observer flavour) asks the agent to create a
//!    session per workload and preserve its files, then to run the prepared hooks; it
//!    answers once they all succeeded. A failed hook closes the sessions again (the observer
//!    flavour's cancel);
//! 3. `luoctl kexec` waits for the same mark ([`Client::wait_ready`]), keyed by the kernel's
//!    transition count where it has one, so a `prepared` that came back after a cancel is not
//!    taken for the one whose hooks ran;
//! 4. in the new kernel, the workload takes its files back ([`Client::claim`]) and says when
//!    it restored them ([`Client::restored`]); the agent finishes each restored session once
//!    the updated hooks succeeded, and the state goes back to `normal`.
//!
//! Only root and the agent's own user may use the socket (checked with `SO_PEERCRED`, and
//! the socket is mode 0600, in a directory only root or the agent's user may write); a client
//! in turn takes only an agent that runs as root or as its own user.
//!
//! The prior art this follows: luo-agent's planned daemon (a socket under `/run`, requests to
//! subscribe, preserve, signal readiness and claim after the reboot), and systemd's file
//! descriptor store (`FileDescriptorStoreMax=`, v261's `FileDescriptorStorePreserve=`).

mod client;
pub mod protocol;
mod server;
mod store;
mod wire;

pub use client::{CALL_LIMIT, Client, ClientError};
pub use server::{Current, Listener, READY_LIMIT, Report};
pub use store::{Finished, Keeper, KeeperEvent, Mark, NotReady, Refusal, STALE_LIMIT};
pub use wire::WireError;

/// Where `luoctl agent` listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/luo/agent.sock";

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use luo_state::State;

    use super::*;

    /// A served keeper; the listener is returned too, since dropping it removes the socket.
    fn serve(
        sessions: bool,
        state: State,
    ) -> (tempfile::TempDir, Arc<Keeper>, std::path::PathBuf, Listener) {
        serve_with(sessions, Arc::new(move || Some((state, Some(2)))))
    }

    fn serve_with(
        sessions: bool,
        current: Arc<Current>,
    ) -> (tempfile::TempDir, Arc<Keeper>, std::path::PathBuf, Listener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/agent.sock");
        let listener = Listener::bind(&path).unwrap();
        let keeper = Arc::new(Keeper::new(dir.path().join("no-device"), sessions));
        listener
            .serve(keeper.clone(), current, Arc::new(|_event| {}))
            .unwrap();
        (dir, keeper, path, listener)
    }

    fn memfd() -> OwnedFd {
        rustix::fs::memfd_create("luo-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap()
    }

    #[test]
    fn kexec_waits_for_the_hooks_through_the_socket() {
        let (_dir, keeper, path, _listener) = serve(false, State::Prepared);
        let client = Client::connect(&path).unwrap();
        let err = client.wait_ready(Duration::from_millis(50)).unwrap_err();
        // The agent's own answer at the end of the client's wait, not the client giving up.
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the prepared hooks did not finish within 50ms"
        );
        keeper.hooks_ready(Mark {
            transitions: Some(2),
            seq: 1,
        });
        let client = Client::connect(&path).unwrap();
        let mark = client.wait_ready(Duration::from_secs(30)).unwrap();
        assert_eq!(mark.transitions, Some(2));
    }

    #[test]
    fn a_refusal_carries_the_agents_reason() {
        let (_dir, _keeper, path, _listener) = serve(false, State::Normal);
        let client = Client::connect(&path).unwrap();
        let file = memfd();
        let err = client.keep("vm", &[(1, file.as_fd())]).unwrap_err();
        assert!(err.to_string().contains("liveupdate=on"), "{err}");
        let err = client.wait_ready(Duration::from_secs(5)).unwrap_err();
        assert!(
            err.to_string().contains("run 'luoctl prepare' first"),
            "{err}"
        );
    }

    #[test]
    fn kept_files_reach_the_keeper_and_go_with_their_workload() {
        let (_dir, keeper, path, _listener) = serve(true, State::Normal);
        let client = Client::connect(&path).unwrap();
        let file = memfd();
        client.keep("vm", &[(7, file.as_fd())]).unwrap();
        let again = Client::connect(&path).unwrap();
        let err = again.keep("vm", &[(7, file.as_fd())]).unwrap_err();
        assert!(err.to_string().contains("already kept"), "{err}");
        drop(client);
        // The keeper lets go once its thread notices the closed connection.
        let mut tries = 0;
        while again.keep("vm", &[(7, file.as_fd())]).is_err() {
            tries += 1;
            assert!(
                tries < 500,
                "the files of a closed connection were still kept"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(keeper.drop_kept("vm"), Some(false));
    }

    #[test]
    fn a_file_that_is_no_memfd_or_a_token_given_twice_is_refused_at_keep() {
        let (_dir, keeper, path, _listener) = serve(true, State::Normal);
        let client = Client::connect(&path).unwrap();
        let plain = tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let err = client.keep("vm", &[(1, plain.as_fd())]).unwrap_err();
        assert!(err.to_string().contains("is not a memfd"), "{err}");
        let file = memfd();
        let err = client
            .keep("vm", &[(1, file.as_fd()), (1, file.as_fd())])
            .unwrap_err();
        assert!(err.to_string().contains("token 1 is given twice"), "{err}");
        assert_eq!(keeper.drop_kept("vm"), None);
    }

    #[test]
    fn after_a_cancel_the_next_prepared_is_answered_by_its_hooks() {
        let count = Arc::new(AtomicU64::new(2));
        let current = {
            let count = count.clone();
            Arc::new(move || Some((State::Prepared, Some(count.load(Ordering::SeqCst)))))
        };
        let (_dir, keeper, path, _listener) = serve_with(true, current);
        keeper.hooks_ready(Mark {
            transitions: Some(2),
            seq: 1,
        });
        assert_eq!(Client::connect(&path).unwrap().cancel().unwrap(), 0);
        // The cancel took the state to normal (3), the next prepare to prepared (4): its
        // waiter starts before the agent acts on it, as `prepare`'s does after preserving.
        count.store(4, Ordering::SeqCst);
        let waiter = {
            let client = Client::connect(&path).unwrap();
            std::thread::spawn(move || client.wait_ready(Duration::from_secs(20)))
        };
        std::thread::sleep(Duration::from_millis(200));
        keeper.hooks_started(Mark {
            transitions: Some(4),
            seq: 3,
        });
        keeper.hooks_ready(Mark {
            transitions: Some(4),
            seq: 3,
        });
        let mark = waiter.join().unwrap().unwrap();
        assert_eq!(mark.transitions, Some(4));
    }

    #[test]
    fn a_prepare_while_updated_is_refused_before_anything_is_preserved() {
        let (_dir, keeper, path, _listener) = serve(true, State::Updated);
        let client = Client::connect(&path).unwrap();
        let file = memfd();
        client.keep("vm", &[(1, file.as_fd())]).unwrap();
        let err = client.prepare(Duration::from_secs(5)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("while the state is updated"), "{text}");
        assert!(text.contains("must be finished first"), "{text}");
        // Not Ready's advice, which would send the person round in a circle.
        assert!(!text.contains("run 'luoctl prepare'"), "{text}");
        // The device was never tried (this one does not exist): the files are still kept.
        assert_eq!(keeper.drop_kept("vm"), Some(false));
    }

    #[test]
    fn a_persons_finish_is_taken_while_updated_only() {
        let (_dir, _keeper, path, _listener) = serve(true, State::Updated);
        assert_eq!(Client::connect(&path).unwrap().finish().unwrap(), (0, 0));
        let (_dir, _keeper, path, _listener) = serve(true, State::Normal);
        let err = Client::connect(&path).unwrap().finish().unwrap_err();
        assert!(err.to_string().contains("not updated"), "{err}");
        let (_dir, _keeper, path, _listener) = serve(false, State::Updated);
        let err = Client::connect(&path).unwrap().finish().unwrap_err();
        assert!(err.to_string().contains("standalone flavour"), "{err}");
    }

    #[test]
    fn an_agent_that_never_answers_ends_the_call_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        // Listens, never accepts: the connection waits in the backlog, unanswered.
        let socket = wire::socket().unwrap();
        let addr = rustix::net::SocketAddrUnix::new(path.as_path()).unwrap();
        rustix::net::bind(&socket, &addr).unwrap();
        rustix::net::listen(&socket, 1).unwrap();
        let client = Client::connect(&path)
            .unwrap()
            .with_timeout(Duration::from_millis(100));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(client.cancel()));
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("cancel still waits for the agent");
        let err = got.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the agent did not answer 'cancel' within 100ms"
        );
    }

    #[test]
    fn no_agent_says_how_to_start_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = Client::connect(dir.path().join("agent.sock")).unwrap_err();
        assert!(err.to_string().contains("start 'luoctl agent'"), "{err}");
    }

    #[test]
    fn a_socket_directory_others_may_write_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Listener::bind(run.join("agent.sock")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod go-w {}", run.display())),
            "{text}"
        );
        assert!(!run.join("agent.sock").exists());
    }

    #[test]
    fn a_second_agent_is_refused_and_a_stale_socket_replaced() {
        let (_dir, _keeper, path, _listener) = serve(false, State::Normal);
        let err = Listener::bind(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        // An agent that died: its socket file is left, and nobody listens on it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let listener = Listener::bind(&path).unwrap();
        // The agent's own socket goes with it.
        drop(listener);
        assert!(!path.exists());
    }
}
