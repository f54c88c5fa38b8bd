# liveupdate/cancelled: prepare, load the image, cancel: the image is unloaded; with it kept, a kexec comes up normal.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
if [ "$(cmdline_word luo_step)" = cancelled ]; then
    rmmod luo
    $CHECK arrival --ko "$KO" normal 0 "the handover record says [normal], not [frozen]"
    echo "cancelled live update, image unloaded, and kept: normal, generation 0"
    exit 0
fi
# `luoctl cancel` unloads what `kexec --load-only` loaded, so that a later `systemctl kexec`
# cannot turn the cancelled live update into a plain one.
$LUOCTL prepare
$LUOCTL kexec --no-wait --load-only --reuse-cmdline --append luo_step=cancelled "$BZIMAGE"
[ "$(cat /sys/kernel/kexec_loaded)" = 1 ] || { echo "no image loaded"; exit 1; }
$LUOCTL cancel
[ "$(cat /sys/kernel/kexec_loaded)" = 0 ] || { echo "cancel left the image loaded"; exit 1; }
# Kept on purpose, the image starts a kernel that comes up normal: the record says so.
$LUOCTL prepare
$LUOCTL kexec --no-wait --load-only --reuse-cmdline --append luo_step=cancelled "$BZIMAGE"
$LUOCTL cancel --keep-loaded
kexec -e
echo "kexec -e returned"; exit 1
