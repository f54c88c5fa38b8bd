# luo.ko on its kernel (CONFIG_LIVEUPDATE=y) booted with liveupdate=on
# (xtask/src/scenario/mainline.rs): mainline owns /dev/liveupdate, so the load fails with one
# line that names the in-tree flavour, no splat, and nothing left behind.
#
# Set by the host: KO. Not `set -e`: each step checks its own result and says what failed.
set -u
[ -c /dev/liveupdate ] || { echo "FAIL: mainline's /dev/liveupdate is missing"; exit 1; }
if insmod "$KO" 2>/dev/null; then echo 'FAIL: luo.ko loaded next to mainline LUO'; exit 1; fi
[ ! -e /sys/kernel/liveupdate ] || { echo 'FAIL: /sys/kernel/liveupdate was left behind'; exit 1; }
lines=$(dmesg | grep -c '^\[ *[0-9.]*\] luo: not loading')
[ "$lines" = 1 ] || { echo "FAIL: $lines refusal lines"; dmesg | grep 'luo:'; exit 1; }
dmesg | grep 'luo: not loading' | grep -q 'CONFIG_LIVEUPDATE_SYSFS_API' || { echo 'FAIL: the refusal does not name the in-tree flavour'; dmesg | grep 'luo:'; exit 1; }
if dmesg | grep -qE 'WARNING:|BUG:|Call Trace:'; then echo 'FAIL: a splat'; dmesg | tail -n 40; exit 1; fi
echo "refused: $(dmesg | grep -o 'luo: not loading.*')"
