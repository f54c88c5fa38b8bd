# The preamble of every live-update scenario (xtask/src/scenario/liveupdate.rs), run in each
# boot before the scenario's own script: xtask sets DIR (a host directory that survives the
# kexec), BZIMAGE and KO above this line.
#
# It mounts debugfs (KHO's directory there tells `luoctl kexec` that KHO is on) and loads the
# module, which reads this boot's arrival from the previous kernel's record: GEN and STATE0
# say which boot this is.
set -eu
# The scenario's script, appended after this one, uses what shellcheck sees unused here.
# shellcheck disable=SC2034
LUOCTL=target/debug/luoctl
# shellcheck disable=SC2034
CHECK=target/debug/luo-guest-tests
grep -q ' /sys/kernel/debug debugfs' /proc/mounts || mount -t debugfs none /sys/kernel/debug
insmod "$KO" selftest=1
# shellcheck disable=SC2034
GEN=$(cat /sys/kernel/liveupdate/generation)
# shellcheck disable=SC2034
STATE0=$(cat /sys/kernel/liveupdate/state)

# `wait_file FILE TENTHS` waits for a file to appear.
wait_file() {
    i=0
    while [ ! -e "$1" ]; do
        i=$((i+1)); [ $i -lt "$2" ] || { echo "demo: timed out waiting for $1"; return 1; }
        sleep 0.1
    done
}
# The last `NAME=VALUE` word of the kernel command line for NAME, or nothing: the tests append
# a word at each kexec (after --reuse-cmdline the earlier ones are still there).
cmdline_word() {
    tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1
}
