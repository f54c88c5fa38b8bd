# liveupdate/failing-hook: a failing agent hook cancels and leaves normal.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
mkdir -p "$DIR/hooks/prepared.d"
# The hook fails once luoctl kexec waits for the prepared hooks, so that the kexec hears of the
# failure from the agent.
cat > "$DIR/hooks/prepared.d/10-fail" <<HOOK
#!/bin/sh
until grep -q 'waiting for the agent' "$DIR/kexec.err" 2>/dev/null; do sleep 0.1; done
echo "checkpoint: the workload did not answer" >&2
exit 1
HOOK
chmod +x "$DIR/hooks/prepared.d/10-fail"
# Two states: prepared, and normal after its cancel.
$LUOCTL agent --hooks-dir "$DIR/hooks" -n 2 > "$DIR/agent.out" 2>&1 &
AGENT_PID=$!
wait_for '[ -S /run/luo/agent.sock ]' 600
$LUOCTL prepare
# The agent's cancel may reach the state before the kexec hears of the failure; the answer is
# the failed hook either way.
set +e
$LUOCTL kexec --load-only --reuse-cmdline "$BZIMAGE" 2> "$DIR/kexec.err"
KEXEC=$?
set -e
cat "$DIR/kexec.err"
[ "$KEXEC" = 10 ] || { echo "luoctl kexec exited $KEXEC after a failed prepared hook, expected 10 (the agent refused)"; exit 1; }
grep -q 'prepared.d/10-fail failed' "$DIR/kexec.err" || { echo "luoctl kexec does not name the failed hook prepared.d/10-fail"; exit 1; }
set +e; wait $AGENT_PID; STATUS=$?; set -e
cat "$DIR/agent.out"
[ "$STATUS" = 8 ] || { echo "the agent exited $STATUS, expected 8 (a hook failed)"; exit 1; }
echo "after the failed hook: $($LUOCTL state)"
