# liveupdate/agent-hooks: luoctl agent runs hooks on both sides of a live update, then finishes.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
HOOKS="$DIR/hooks"
case "$GEN" in
0)  mkdir -p "$HOOKS/prepared.d" "$HOOKS/updated.d"
    # The hooks expand $LUO_GENERATION and $LUO_STATE when the agent runs them, not here.
    # shellcheck disable=SC2016
    printf '#!/bin/sh\necho "saved at generation $LUO_GENERATION in state $LUO_STATE" > "%s/saved"\n' "$DIR" > "$HOOKS/prepared.d/10-save"
    # shellcheck disable=SC2016
    printf '#!/bin/sh\ncat "%s/saved"\necho "restored at generation $LUO_GENERATION"\n' "$DIR" > "$HOOKS/updated.d/10-restore"
    chmod +x "$HOOKS/prepared.d/10-save" "$HOOKS/updated.d/10-restore"
    $LUOCTL agent --hooks-dir "$HOOKS" > "$DIR/agent.out" 2>&1 &
    # wait_for evaluates its condition: $DIR expands there.
    # shellcheck disable=SC2016
    wait_for 'grep -q watching "$DIR/agent.out"' 600 || { echo "the agent never started"; cat "$DIR/agent.out"; exit 1; }
    $LUOCTL prepare
    # kexec waits for the agent's prepared hooks before it loads: the saved file is there then.
    $LUOCTL kexec --load-only --reuse-cmdline "$BZIMAGE"
    cat "$DIR/agent.out"
    grep -q 'saved at generation 0 in state prepared' "$DIR/saved" || { echo "the prepared hook did not run"; exit 1; }
    kexec -e
    echo "kexec -e returned"; exit 1 ;;
1)  # To a file, not through tee: the shell has no pipefail, and the agent's status counts.
    set +e
    $LUOCTL agent --hooks-dir "$HOOKS" --no-socket -n 1 > "$DIR/agent.out" 2>&1
    STATUS=$?
    set -e
    cat "$DIR/agent.out"
    [ "$STATUS" = 0 ] || { echo "the agent exited $STATUS in the new kernel, expected 0"; exit 1; }
    grep -q 'restored at generation 1' "$DIR/agent.out" || { echo "the updated hook did not run"; exit 1; }
    grep -q 'saved at generation 0' "$DIR/agent.out" || { echo "the saved state did not cross"; exit 1; }
    echo "hooks on both sides: $($LUOCTL state), generation $($LUOCTL generation)" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
