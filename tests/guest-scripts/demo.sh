# The demo's guest script, run in both boots (xtask/src/scenario/demo.rs sets the variables
# above this line: LUOCTL, WORKLOAD, COUNTER, HOOKS, BZIMAGE, DIR, MIB, and KO for the
# standalone flavour; then puts lib.sh).
#
# luoctl agent runs in each kernel with the hooks of contrib/hooks, and a watcher prints each
# state. Observer flavour (in-tree kernel, liveupdate=on): the workload keeps a counter and MIB
# MiB of stamped memory in a memfd that it hands to the agent; 'luoctl prepare' has the agent
# preserve it, 'luoctl kexec' waits for the prepared hooks, and in the new kernel the workload
# claims the memfd back, checks every page and resumes counting. Standalone flavour (luo.ko):
# the contrib hooks checkpoint the counter to a file, as the v3 design has it.
set -eu
# The watcher first: the blackout ends when it reads `updated`, so nothing of the script's own
# setup belongs before it. --follow: luo.ko's state file appears only with the insmod below.
$LUOCTL watch --json --initial --follow &
mount_debugfs
if [ -n "${KO:-}" ]; then
    insmod "$KO"
fi
GEN=$(cat /sys/kernel/liveupdate/generation)
FLAVOUR=$(cat /sys/kernel/liveupdate/flavour)
export LUO_EXAMPLE_DIR="$DIR/example"

# The hooks as root-owned files that nobody else may write, as the agent demands.
rm -rf /tmp/hooks && cp -r "$HOOKS" /tmp/hooks && chmod -R go-w /tmp/hooks

# The agent's JSON records and its log both reach the host, which builds the timeline from the
# records.
$LUOCTL agent --hooks-dir /tmp/hooks --json 2>&1 &
wait_for "[ -S /run/luo/agent.sock ]" 300

if [ "$GEN" = 0 ]; then
    echo "demo: cold boot, $FLAVOUR flavour, state $($LUOCTL state)"
    if [ "$FLAVOUR" = observer ]; then
        $WORKLOAD --memory-mib "$MIB" > /tmp/workload.out 2>&1 &
        tail -f /tmp/workload.out &
        wait_for "grep -q 'running:' /tmp/workload.out" 1200
    else
        mkdir -p "$LUO_EXAMPLE_DIR"
        $COUNTER --dir "$LUO_EXAMPLE_DIR" &
    fi
    sleep 1
    echo "demo: luoctl prepare && luoctl kexec"
    $LUOCTL prepare
    $LUOCTL kexec --reuse-cmdline "$BZIMAGE"
    echo "demo: luoctl kexec returned: the live update did not happen"
    exit 1
fi

echo "demo: new kernel, live update generation $GEN, $FLAVOUR flavour, state $($LUOCTL state)"
if [ "$FLAVOUR" = observer ]; then
    $WORKLOAD --run-for 2
else
    $COUNTER --dir "$LUO_EXAMPLE_DIR" --from "$LUO_EXAMPLE_DIR/checkpoint" &
    COUNTER_PID=$!
    sleep 2
    # Still counting: it reported where it restarted (the host checks it is the checkpoint),
    # and only SIGTERM ends it. kill -0 alone would pass a counter that exited and is not yet
    # reaped; its status tells.
    kill -0 "$COUNTER_PID" || { echo "demo: the restarted counter is gone"; exit 1; }
    kill "$COUNTER_PID"
    set +e; wait "$COUNTER_PID"; STATUS=$?; set -e
    [ "$STATUS" = 143 ] || { echo "demo: the restarted counter ended with status $STATUS before it was stopped (143: SIGTERM)"; exit 1; }
fi
$LUOCTL wait normal --timeout 60 > /dev/null
sleep 0.5
echo "demo: final state $($LUOCTL state)"
