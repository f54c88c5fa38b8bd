# liveupdate/forged-marker: luo.handover=7 on a cold kernel's command line is ignored: normal.
# Runs after preamble.sh (LUOCTL, CHECK, DIR, BZIMAGE, KO, GEN, STATE0, cmdline_word; lib.sh's
# mount_debugfs and wait_for).
rmmod luo
$CHECK arrival --ko "$KO" normal 0 "no kexec handover data"
echo "forged marker: normal, generation 0"
