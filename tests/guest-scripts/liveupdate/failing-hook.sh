# liveupdate/failing-hook: a failing agent hook cancels and leaves normal.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, wait_file, cmdline_word).
mkdir -p "$DIR/hooks/prepared.d"
printf '#!/bin/sh\necho "checkpoint: the workload did not answer" >&2\nexit 1\n' > "$DIR/hooks/prepared.d/10-fail"
chmod +x "$DIR/hooks/prepared.d/10-fail"
# Two states: prepared, and normal after its cancel.
$LUOCTL agent --hooks-dir "$DIR/hooks" -n 2 > "$DIR/agent.out" 2>&1 &
AGENT_PID=$!
wait_file /run/luo/agent.sock 600
$LUOCTL prepare
if $LUOCTL kexec --load-only --reuse-cmdline "$BZIMAGE" 2> "$DIR/kexec.err"; then
    echo "luoctl kexec loaded a kernel after a failed prepared hook"; exit 1
fi
cat "$DIR/kexec.err"
set +e; wait $AGENT_PID; STATUS=$?; set -e
cat "$DIR/agent.out"
[ "$STATUS" = 8 ] || { echo "the agent exited $STATUS, expected 8 (a hook failed)"; exit 1; }
echo "after the failed hook: $($LUOCTL state)"
