# The observer flavour under Debian's systemd as PID 1 (xtask/src/scenario/systemd.rs puts the
# variables LUOCTL, WORKLOAD, BZIMAGE and MIB, then systemd-lib.sh, above this line). Run in
# both boots and both phases (LUO_GUEST_PHASE): the agent is the unit of contrib/systemd/ with
# its observer drop-in, a root storage daemon that systemctl kexec's shutdown does not stop or
# kill, so the session that preserves the workload's memfd is still open at reboot(KEXEC).
set -eu
if [ "$LUO_GUEST_PHASE" = setup ]; then
    install_agent observer.conf
    exit 0
fi

GEN=$(cat /sys/kernel/liveupdate/generation)
FLAVOUR=$(cat /sys/kernel/liveupdate/flavour)
[ "$FLAVOUR" = observer ] || { echo "luo runs in the $FLAVOUR flavour, not observer (liveupdate=on?)"; exit 1; }
# The root storage daemon convention, as systemd loaded the unit and its drop-in: nothing
# orders or conflicts it with shutdown.target, and its main process has '@' in argv[0].
check_convention() {
    expect_prop DefaultDependencies no
    expect_prop IgnoreOnIsolate yes
    for dep in Conflicts Before Requires BindsTo PartOf; do
        case " $(prop "$dep") " in
        *shutdown.target*|*umount.target*|*final.target*)
            echo "luo-agent.service: $dep=$(prop "$dep"): the shutdown would stop it"; exit 1 ;;
        esac
    done
    PID=$(prop MainPID)
    ARGV0=$(tr '\0' '\n' < "/proc/$PID/cmdline" | head -n 1)
    [ "$ARGV0" = @luoctl ] || { echo "the agent (pid $PID) has argv[0] '$ARGV0', not @luoctl"; exit 1; }
    [ "$(stat -c %u "/proc/$PID")" = 0 ] || { echo "the agent does not run as root"; exit 1; }
    echo "note: boot $GEN: agent pid $PID, argv[0] $ARGV0, DefaultDependencies=no, IgnoreOnIsolate=yes, no dependency on shutdown.target"
}

case "$GEN" in
0)  [ "$(state)" = normal ] || { echo "a cold boot came up $(state)"; exit 1; }
    check_ready normal
    check_convention
    # The workload as a service of its own (a transient unit with the default dependencies:
    # the shutdown stops it, as it would a VMM); it keeps its connection to the agent open.
    systemd-run --quiet --unit=luo-workload "$WORKLOAD" --memory-mib "$MIB"
    wait_journal luo-workload.service 'running:' 300
    # On the output port too, which no kernel line can break into, unlike the console.
    journal luo-workload.service | grep 'MiB stamped in' | sed 's/^/note: boot 0: /'
    luoctl prepare
    wait_journal luo-agent.service 'preserved for the kexec' 60
    # Waits for the prepared hooks, through the agent's socket.
    luoctl kexec --load-only --reuse-cmdline "$BZIMAGE"
    [ "$(state)" = prepared ] || { echo "after the prepared hooks the state is $(state)"; journal luo-agent.service; exit 1; }
    [ "$(cat /sys/kernel/kexec_loaded)" = 1 ] || { echo "luoctl kexec --load-only loaded nothing"; exit 1; }
    echo "note: boot 0: agent pid $(prop MainPID) holds the session; systemctl kexec"
    systemctl kexec
    # The shutdown stops this service: luo-guest-init dies of SIGTERM without a status, and
    # this shell of the SIGKILL after.
    sleep 600
    echo "systemctl kexec did not reboot"; exit 1 ;;
1)  [ "$(state)" = updated ] || { echo "after the live update the state is $(state)"; exit 1; }
    check_ready updated
    check_convention
    journal luo-agent.service | grep -q 'state updated at start' || { echo "the agent did not find updated at start"; journal luo-agent.service; exit 1; }
    # The workload claims its memfd back, checks every page and counts on for 2 s. Not
    # `systemd-run --wait`, which needs D-Bus (the guest has none): the unit stays after its
    # exit (RemainAfterExit=yes, and a failed unit stays anyway) for its result to be read.
    systemd-run --quiet --unit=luo-workload -p RemainAfterExit=yes "$WORKLOAD" --run-for 2
    wprop() { systemctl show -P "$1" luo-workload.service; }
    i=0
    until [ "$(wprop SubState)" = exited ] || [ "$(wprop ActiveState)" = failed ]; do
        i=$((i+1))
        [ $i -lt 600 ] || { echo "the workload did not end in 120 s"; journal luo-workload.service; exit 1; }
        sleep 0.2
    done
    if [ "$(wprop Result)" != success ] || [ "$(wprop ExecMainStatus)" != 0 ]; then
        echo "the workload failed in the new kernel: Result=$(wprop Result), status $(wprop ExecMainStatus):"
        journal luo-workload.service; journal luo-agent.service; exit 1
    fi
    journal luo-workload.service | grep -q 'restored .* check' || { echo "the workload did not restore its memory"; journal luo-workload.service; exit 1; }
    journal luo-workload.service | grep 'restored .* check' | sed 's/^/note: boot 1: /'
    wait_journal luo-agent.service 'session workload: finished' 60
    luoctl wait normal --timeout 60 > /dev/null
    check_ready normal
    journalctl -b -u luo-agent.service -u luo-workload.service -o short-monotonic --no-pager | sed 's/^/journal: /'
    echo "systemd observer live update: generation 1, memory restored, session finished, state normal" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
