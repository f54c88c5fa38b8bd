# The helpers of the guest scripts that luo-guest-init runs (systemd's have systemd-lib.sh):
# xtask/src/scenario/ puts this file before builtin-liveupdate.sh, demo.sh, observer.sh and
# liveupdate/preamble.sh, after the variables the host sets.

# mount_debugfs: mounts debugfs unless it is mounted. KHO's directory there tells
# `luoctl kexec` that KHO is on.
mount_debugfs() {
    grep -q ' /sys/kernel/debug debugfs' /proc/mounts || mount -t debugfs none /sys/kernel/debug
}

# wait_for CONDITION TENTHS: runs the shell command CONDITION every 0.1 s until it succeeds;
# fails after TENTHS tries, saying what it waited for.
wait_for() {
    i=0
    while ! eval "$1"; do
        i=$((i+1))
        [ $i -lt "$2" ] || { echo "timed out after $(($2 / 10)) s waiting for: $1"; return 1; }
        sleep 0.1
    done
}
