# liveupdate/kho-off: KHO off: the module says so, luoctl kexec refuses.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
dmesg | grep -q 'kexec handover (KHO) is off' || { echo "the module did not log that KHO is off"; exit 1; }
$LUOCTL prepare
if $LUOCTL kexec --no-wait --load-only --reuse-cmdline "$BZIMAGE" 2> "$DIR/kexec.err"; then
    echo "luoctl kexec loaded an image with KHO off"; exit 1
fi
cat "$DIR/kexec.err"
grep -q 'KHO' "$DIR/kexec.err" || { echo "the refusal does not name KHO"; exit 1; }
$LUOCTL cancel
echo "KHO off: refused, $($LUOCTL state)"
