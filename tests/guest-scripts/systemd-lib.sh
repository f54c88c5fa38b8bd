# The functions both systemd guests' scripts use (xtask/src/scenario/systemd.rs puts this file
# before each of them, after their variables: LUOCTL among them).
state() { cat /sys/kernel/liveupdate/state; }
prop() { systemctl show -P "$1" luo-agent.service; }
expect_prop() {
    value=$(prop "$1")
    [ "$value" = "$2" ] || { echo "luo-agent.service: $1=$value, expected $2"; systemctl status --no-pager luo-agent.service || true; exit 1; }
}
# install_agent [DROP-IN]: in the setup phase, what a package and an administrator would have
# put on the disk (the overlay is new at every boot, so each boot installs the same again):
# luoctl in /usr/bin, the hooks of contrib/hooks in /etc/luo/hooks (root's, not group- or
# other-writable: the agent checks), and the unit of contrib/systemd, with the drop-in
# DROP-IN of contrib/systemd/luo-agent.service.d/ if one is named, enabled. Marks on the
# console with the kernel's time: the setup phase is part of the boot time.
install_agent() {
    echo "<6>setup: start" > /dev/kmsg
    # luoctl is bound rather than copied: 24 MiB of debug build over 9p cost seconds of TCG.
    touch /usr/bin/luoctl
    mount -o bind,ro "$LUOCTL" /usr/bin/luoctl
    install -d -m 0755 /etc/luo
    cp -R contrib/hooks /etc/luo/hooks
    chmod -R go-w /etc/luo/hooks
    install -m 0644 contrib/systemd/luo-agent.service /etc/systemd/system/luo-agent.service
    if [ $# -gt 0 ]; then
        install -d -m 0755 /etc/systemd/system/luo-agent.service.d
        install -m 0644 "contrib/systemd/luo-agent.service.d/$1" \
            "/etc/systemd/system/luo-agent.service.d/$1"
    fi
    echo "<6>setup: before enable" > /dev/kmsg
    systemctl enable luo-agent.service
    echo "<6>setup: after enable" > /dev/kmsg
}
# journal [UNIT]: this boot's journal of UNIT (default: the agent's), the messages alone.
journal() { journalctl -b -u "${1:-luo-agent.service}" -o cat --no-pager; }
# wait_journal UNIT TEXT SECONDS: until the unit's journal has a line with TEXT.
wait_journal() {
    i=0
    until journal "$1" | grep -q -- "$2"; do
        i=$((i+1))
        [ $i -lt $(($3 * 5)) ] || { echo "no '$2' in the journal of $1 after $3 s:"; journal "$1"; exit 1; }
        sleep 0.2
    done
}
# check_ready STATE: the readiness systemd heard (active, running only after READY=1 for
# Type=notify) and the agent's STATUS= text, 'state STATE'; GEN is the boot's generation.
check_ready() {
    expect_prop Type notify
    expect_prop NotifyAccess main
    expect_prop UnitFileState enabled
    expect_prop ActiveState active
    expect_prop SubState running
    expect_prop NRestarts 0
    expect_prop StatusText "state $1"
    START=$(prop ExecMainStartTimestampMonotonic)
    READY=$(prop ActiveEnterTimestampMonotonic)
    echo "note: boot $GEN: agent started at $((START / 1000)) ms, READY=1 at $((READY / 1000)) ms (CLOCK_MONOTONIC, from the kernel's start)"
}
