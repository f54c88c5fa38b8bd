# liveupdate/two-updates: two live updates in a row: generations 1 and 2, reloads updated until finish.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
case "$GEN" in
0)  [ "$STATE0" = normal ] || { echo "a cold boot came up $STATE0"; exit 1; }
    $LUOCTL prepare
    $LUOCTL kexec --no-wait --reuse-cmdline "$BZIMAGE"
    echo "luoctl kexec returned"; exit 1 ;;
1)  rmmod luo
    $CHECK arrival --ko "$KO" updated 1
    $LUOCTL prepare
    $LUOCTL kexec --no-wait --reuse-cmdline "$BZIMAGE"
    echo "luoctl kexec returned"; exit 1 ;;
2)  rmmod luo
    $CHECK arrival --ko "$KO" updated 2
    echo "two live updates: generation 2" ;;
*)  echo "unexpected generation $GEN"; exit 1 ;;
esac
