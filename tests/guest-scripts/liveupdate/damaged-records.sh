# liveupdate/damaged-records: each damaged record is refused: normal, the reason in the log.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
# Boot n+1 checks the damage boot n did: magic, version, size, state, in that order.
REASONS="bad_magic version_3_unknown record_states_size_31 impossible_state_4294967295"
STEP=$(cmdline_word luo_damage)
if [ -n "$STEP" ]; then
    REASON=$(echo "$REASONS" | cut -d' ' -f$((STEP + 1)) | tr _ ' ')
    rmmod luo
    $CHECK arrival --ko "$KO" normal 0 "handover record refused: $REASON"
    echo "damage $STEP refused: $REASON"
    NEXT=$((STEP + 1))
else
    NEXT=0
fi
if [ "$NEXT" -eq "$(echo "$REASONS" | wc -w)" ]; then echo "every damaged record was refused"; exit 0; fi
$LUOCTL prepare
$LUOCTL kexec --no-wait --load-only --reuse-cmdline --append "luo_damage=$NEXT" "$BZIMAGE"
$CHECK freeze
$CHECK damage "$NEXT"
kexec -e
echo "kexec -e returned"; exit 1
