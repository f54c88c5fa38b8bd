# liveupdate/no-image: a kexec reboot with no image loaded leaves prepared; cancel returns to normal.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
$LUOCTL prepare
kexec -u || true
if kexec -e; then echo "kexec -e without an image returned success"; exit 1; fi
S=$($LUOCTL state)
[ "$S" = prepared ] || { echo "after the failed reboot the state is $S"; exit 1; }
$LUOCTL cancel
echo "after cancel: $($LUOCTL state)"
