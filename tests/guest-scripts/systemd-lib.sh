# The functions both systemd guests' scripts use (xtask/src/scenario/systemd.rs puts this file
# before each of them, after their variables).
state() { cat /sys/kernel/liveupdate/state; }
prop() { systemctl show -P "$1" luo-agent.service; }
expect_prop() {
    value=$(prop "$1")
    [ "$value" = "$2" ] || { echo "luo-agent.service: $1=$value, expected $2"; systemctl status --no-pager luo-agent.service || true; exit 1; }
}
