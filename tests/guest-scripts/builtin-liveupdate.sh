# luo built in (the in-tree kernel, no module): a live update across kexec, in one guest and
# two boots (xtask/src/scenario/builtin.rs). The cold boot prepares and reboots into the same
# kernel with kexec_file_load (the call that carries KHO data); the new kernel must have come up
# updated, generation 1, and must have decided so before userspace started. dmesg timestamps
# tell how long before init the state was known; the `note:` lines carry them to the host.
#
# Set by the host: BZIMAGE; then lib.sh.
set -eu
LUOCTL=target/debug/luoctl
mount_debugfs
GEN=$(cat /sys/kernel/liveupdate/generation)
STATE=$(cat /sys/kernel/liveupdate/state)
stamp() {
    dmesg | sed -n "s/^\[ *\([0-9.]*\)\] $1.*/\1/p" | head -n 1
}
case "$GEN" in
0)  [ "$STATE" = normal ] || { echo "a cold boot came up $STATE"; exit 1; }
    $LUOCTL prepare
    kexec -s -l "$BZIMAGE" --reuse-cmdline
    kexec -e
    echo "kexec -e returned"; exit 1 ;;
1)  [ "$STATE" = updated ] || { echo "the live-updated boot came up $STATE"; exit 1; }
    READY=$(stamp 'luo: Ready in state \[updated\]')
    INIT=$(stamp 'Run .* as init process')
    if [ -z "$READY" ] || [ -z "$INIT" ]; then
        echo "missing log lines:"; dmesg | grep -e 'luo:' -e 'init process'; exit 1
    fi
    echo "note: luo ready in state updated at ${READY} s, init started at ${INIT} s (kernel time)"
    echo "note: $(dmesg | grep -m 1 'luo: Ready in state')"
    awk -v r="$READY" -v i="$INIT" 'BEGIN { exit !(r < i) }' || { echo "luo was ready only after init started"; exit 1; }
    $LUOCTL finish
    [ "$(cat /sys/kernel/liveupdate/state)" = normal ] || { echo "finish did not return to normal"; exit 1; }
    echo "built-in live update: generation 1, updated before init, finished" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
