# The observer flavour, in one guest of the in-tree kernel booted with liveupdate=on: four
# boots, each a kexec_file_load with KHO from the one before. The guest's init runs this script
# in every boot; the word luo_boot=N that each kexec appends says which boot this is.
#
# Every boot checks the transition counter where it is known, and the watchers' records
# (transitions, missed) against it.
#
# Set by the host: LUOCTL, CHECK (luo-guest-tests), DIR (a host directory that survives the
# kexec), BZIMAGE, SELFTESTS (mainline's tools/testing/selftests/liveupdate, built); then
# lib.sh.
#
#   boot 1  mainline's own suite with a watcher; a preserved file cancelled by closing its
#           session; then a 256 MiB memfd, mainline's two kexec tests and an unclaimed session
#           preserved, and a kexec
#   boot 2  updated, generation 1 as mainline logs it; the memfd checked page by page and the
#           kexec tests' second stage; still updated while one session is unclaimed, and
#           until its retrieved session is closed; then a kexec with no session
#   boot 3  normal, generation 2; a kexec with one empty session
#   boot 4  normal, generation 3
set -eu

MIB=256
SEED=$$
boot=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^luo_boot=//p' | tail -n 1)
boot=${boot:-1}
state() { cat /sys/kernel/liveupdate/state; }
expect_state() {
    [ "$(state)" = "$1" ] || { echo "FAIL: boot $boot: $2: state is $(state), expected $1"; exit 1; }
}
transitions() { cat /sys/kernel/liveupdate/transitions; }
expect_transitions() {
    [ "$(transitions)" = "$1" ] || { echo "FAIL: boot $boot: $2: transitions is $(transitions), expected $1"; exit 1; }
}
# A watcher per boot, as an agent would run it; its records go to the host.
watch() {
    "$LUOCTL" watch --initial --json > "$DIR/watch.$boot" 2> "$DIR/watch.$boot.err" &
    WATCHER=$!
    # Its first record is the state found at start: from then on it sees every change.
    # wait_for evaluates its condition: $DIR and $boot expand there.
    # shellcheck disable=SC2016
    wait_for 'grep -q "^{" "$DIR/watch.$boot" 2>/dev/null' 100 || { echo "FAIL: the watcher did not start"; cat "$DIR/watch.$boot.err"; exit 1; }
}
# The host reads the watcher's records once the guest is gone; these lines say what it saw.
stop_watch() {
    sleep 0.5
    kill "$WATCHER" 2>/dev/null || true
    wait "$WATCHER" 2>/dev/null || true
}
kexec_next() {
    echo "kexec into boot $((boot+1))"
    sync
    kexec -s -l "$BZIMAGE" --reuse-cmdline --append="luo_boot=$((boot+1))"
    kexec -e
    echo "FAIL: kexec -e returned"; exit 1
}
# Runs one of mainline's selftests; a skip (exit 4, or a test marked SKIP) is a failure here,
# as is anything but exit 0. Its TAP summary goes to the host.
selftest() {
    name=$1; shift
    out="$DIR/selftest.$name.$boot"
    set +e
    "$SELFTESTS/$name" "$@" > "$out" 2>&1
    rc=$?
    set -e
    grep -E '^(# )?(ok|not ok|Totals|# Totals|# PASSED|# FAILED)|^--- .* (PASSED|FAILED) ---' "$out" | sed "s/^/selftest $name: /" | tail -n 4
    if [ $rc -ne 0 ] || grep -qiE '^(# )?ok .*# skip' "$out"; then
        echo "FAIL: $name exited $rc (4 is a skip)"; tail -n 30 "$out"; exit 1
    fi
}
luo_number() {
    dmesg | sed -n 's/.*luo: Retrieved live update data, liveupdate number: \([0-9]*\).*/\1/p' | tail -n 1
}

[ "$(cat /sys/kernel/liveupdate/flavour)" = observer ] || { echo "FAIL: flavour is $(cat /sys/kernel/liveupdate/flavour)"; exit 1; }
echo "boot $boot: state $(state), generation $(cat /sys/kernel/liveupdate/generation), mainline's number: $(luo_number)"

case "$boot" in
1)
    expect_state normal "a cold boot"
    expect_transitions 0 "a cold boot"
    [ "$(cat /sys/kernel/liveupdate/generation)" = 0 ] || { echo "FAIL: generation after a cold boot"; exit 1; }
    watch
    selftest liveupdate
    expect_state normal "after mainline's suite"
    "$CHECK" session-errors
    expect_state normal "after the session errors (nothing was preserved)"
    # Cancel: a file preserved, then its session closed.
    holder=$("$CHECK" preserve-memfd cancelled 1 1 "$SEED" | sed -n 's/^holder: //p')
    expect_state prepared "with a file preserved"
    kill "$holder"
    i=0; while [ "$(state)" != normal ] && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done
    expect_state normal "once the session is closed"
    # What crosses the kexec.
    "$CHECK" preserve-memfd luo-memory 1 "$MIB" "$SEED" | grep -v '^holder'
    echo "$SEED" > "$DIR/seed"
    "$SELFTESTS/luo_kexec_simple" -s 1 > "$DIR/selftest.luo_kexec_simple.1" 2>&1 || { echo "FAIL: luo_kexec_simple stage 1"; cat "$DIR/selftest.luo_kexec_simple.1"; exit 1; }
    "$SELFTESTS/luo_multi_session" -s 1 > "$DIR/selftest.luo_multi_session.1" 2>&1 || { echo "FAIL: luo_multi_session stage 1"; cat "$DIR/selftest.luo_multi_session.1"; exit 1; }
    "$CHECK" preserve-memfd unclaimed 7 1 "$SEED" | grep -v '^holder'
    expect_state prepared "with files preserved for the kexec"
    kexec_next
    ;;
2)
    expect_state updated "the boot after a live update"
    expect_transitions 0 "the boot after a live update (arriving is no change)"
    number=$(luo_number)
    if [ "$(cat /sys/kernel/liveupdate/generation)" != "$number" ] || [ "$number" != 1 ]; then
        echo "FAIL: generation $(cat /sys/kernel/liveupdate/generation), mainline logged $number"; exit 1
    fi
    watch
    "$CHECK" verify-memfd luo-memory 1 "$MIB" "$(cat "$DIR/seed")"
    selftest luo_kexec_simple -s 2
    selftest luo_multi_session -s 2
    expect_state updated "while a handed-over session is unclaimed"
    holder=$("$CHECK" retrieve-and-hold unclaimed 7 | sed -n 's/^holder: //p')
    expect_state updated "while a retrieved session is neither finished nor closed"
    kill "$holder"
    i=0; while [ "$(state)" != normal ] && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done
    expect_state normal "once the last session is closed"
    stop_watch
    "$CHECK" check-watch "$DIR/watch.1" normal,prepared,normal,prepared 'prepared|frozen'
    # The watcher's records account for every change the counter counted.
    "$CHECK" check-watch "$DIR/watch.2" updated,normal normal "$(transitions)"
    kexec_next
    ;;
3)
    expect_state normal "after a kexec with no session"
    [ "$(cat /sys/kernel/liveupdate/generation)" = 2 ] || { echo "FAIL: generation $(cat /sys/kernel/liveupdate/generation), expected 2"; exit 1; }
    "$CHECK" hold-empty-session empty
    expect_state normal "with an empty session"
    expect_transitions 0 "with only an empty session (no change)"
    kexec_next
    ;;
4)
    expect_state normal "after a kexec with only an empty session"
    [ "$(cat /sys/kernel/liveupdate/generation)" = 3 ] || { echo "FAIL: generation $(cat /sys/kernel/liveupdate/generation), expected 3"; exit 1; }
    echo "observer: memory survived, every watched change legal, empty kexecs normal"
    ;;
esac
