# The standalone flavour under Debian's systemd as PID 1 (xtask/src/scenario/systemd.rs puts
# the variables LUOCTL, BZIMAGE and DIR, then systemd-lib.sh, above this line). Run in both
# boots and both phases (LUO_GUEST_PHASE): the agent is the unit of contrib/systemd/, the
# hooks those of contrib/hooks/, and systemctl kexec reboots into the live update.
set -eu
EXAMPLE=/var/lib/luo-example
if [ "$LUO_GUEST_PHASE" = setup ]; then
    install_agent
    # The hooks' checkpoint directory, on the host: the only storage that outlives the boot.
    install -d -m 0755 "$EXAMPLE"
    mount --bind "$DIR" "$EXAMPLE"
    exit 0
fi

GEN=$(cat /sys/kernel/liveupdate/generation)
FLAVOUR=$(cat /sys/kernel/liveupdate/flavour)
[ "$FLAVOUR" = standalone ] || { echo "luo runs in the $FLAVOUR flavour, not standalone"; exit 1; }

case "$GEN" in
0)  [ "$(state)" = normal ] || { echo "a cold boot came up $(state)"; exit 1; }
    check_ready normal
    # The workload: answers the checkpoint hook's request with its counter.
    ( n=0
      while :; do
          n=$((n + 1))
          if [ -e "$EXAMPLE/checkpoint.request" ]; then
              echo "$n" > "$EXAMPLE/checkpoint"
              rm -f "$EXAMPLE/checkpoint.request"
          fi
          sleep 0.1
      done ) &
    luoctl prepare
    wait_journal luo-agent.service '90-sync succeeded' 60
    [ "$(state)" = prepared ] || { echo "after the prepared hooks the state is $(state)"; journal; exit 1; }
    echo "note: checkpoint saved: $(cat "$EXAMPLE/checkpoint")"
    luoctl kexec --load-only --reuse-cmdline "$BZIMAGE"
    [ "$(cat /sys/kernel/kexec_loaded)" = 1 ] || { echo "luoctl kexec --load-only loaded nothing"; exit 1; }
    echo "boot 0: systemctl kexec"
    systemctl kexec
    # The shutdown stops this service: luo-guest-init dies of SIGTERM without a status, and
    # this shell of the SIGKILL after.
    sleep 600
    echo "systemctl kexec did not reboot"; exit 1 ;;
1)  wait_journal luo-agent.service 'sent finish' 60
    [ "$(state)" = normal ] || { echo "after finish the state is $(state)"; journal; exit 1; }
    check_ready normal
    journal | grep -q 'state updated at start' || { echo "the agent did not find updated at start"; journal; exit 1; }
    journal | grep -q 'restore: found checkpoint' || { echo "the restore hook found no checkpoint"; journal; exit 1; }
    journalctl -b -u luo-agent.service -o short-monotonic --no-pager | sed 's/^/journal: /'
    systemctl stop luo-agent.service
    # The agent dies of the SIGTERM (after stopping a running hook), which systemd counts as
    # a clean exit of the main process.
    expect_prop Result success
    expect_prop ExecMainCode 2
    expect_prop ExecMainStatus 15
    echo "note: boot $GEN: stopped: Result=success, killed by SIGTERM (a clean exit for systemd)"
    # Without luo the unit is skipped, not started to wait for a READY=1 that never comes
    # and restarted forever: hide the state file as a kernel without luo would.
    mount -t tmpfs -o mode=0755 none /sys/kernel/liveupdate
    systemctl start luo-agent.service
    sleep 3
    expect_prop ConditionResult no
    expect_prop ActiveState inactive
    expect_prop NRestarts 0
    umount /sys/kernel/liveupdate
    echo "note: boot $GEN: without /sys/kernel/liveupdate/state the unit is skipped: inactive, no restart"
    echo "systemd live update: generation 1, restored, finished, state normal" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
