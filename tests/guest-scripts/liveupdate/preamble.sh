# The preamble of every live-update scenario (xtask/src/scenario/liveupdate.rs), run in each
# boot before the scenario's own script: xtask sets DIR (a host directory that survives the
# kexec), BZIMAGE and KO, then puts lib.sh, above this line.
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
mount_debugfs
insmod "$KO" selftest=1
# shellcheck disable=SC2034
GEN=$(cat /sys/kernel/liveupdate/generation)
# shellcheck disable=SC2034
STATE0=$(cat /sys/kernel/liveupdate/state)

# The last `NAME=VALUE` word of the kernel command line for NAME, or nothing: the tests append
# a word at each kexec (after --reuse-cmdline the earlier ones are still there).
cmdline_word() {
    tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1
}
