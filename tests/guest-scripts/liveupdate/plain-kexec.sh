# liveupdate/plain-kexec: a plain kexec_file_load from normal comes up normal, generation 0.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
if [ "$(cmdline_word luo_step)" = plain ]; then
    rmmod luo
    $CHECK arrival --ko "$KO" normal 0 "the handover record says [normal], not [frozen]"
    echo "plain kexec: normal, generation 0"
    exit 0
fi
kexec -s -l "$BZIMAGE" --reuse-cmdline --append=luo_step=plain
kexec -e
echo "kexec -e returned"; exit 1
