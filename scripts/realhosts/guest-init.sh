#!/bin/busybox sh
# /init of Corral's tiny test guest (packed into the initramfs by scripts/realhosts.sh).
#
# The guest exists so that tests see real, known workloads from the hypervisor side:
# the kernel command line word corral.load=idle|cpu|disk chooses what it does, and the
# ACPI power button powers it off so that `virsh shutdown` works without any init system.
# Everything it says goes to the serial console (ttyS0), one "corral-guest:" line per step.

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

say() { echo "corral-guest: $*" >/dev/console; }

# Drivers are modules in Debian's cloud kernel; the build wrote them in dependency order.
while read -r module; do
    insmod "/lib/modules/$module.ko" 2>/dev/null || say "module $module failed to load"
done </lib/modules/order

cmdline_value() {
    for word in $(cat /proc/cmdline); do
        case "$word" in "$1="*) echo "${word#"$1="}"; return;; esac
    done
    echo "$2"
}

# Power off on the ACPI power button: any event read from a "Power Button" input device.
power_off_on_press() {
    node=$1
    tries=0
    while [ ! -c "$node" ] && [ "$tries" -lt 50 ]; do sleep 0.1; tries=$((tries + 1)); done
    if dd if="$node" of=/dev/null bs=24 count=1 2>/dev/null; then
        say "power button pressed, powering off"
        sync
        poweroff -f
    fi
    say "cannot read $node; virsh shutdown will not work"
}

watch_power_button() {
    found=0
    for dev in /sys/class/input/event*; do
        [ -e "$dev/device/name" ] || continue
        grep -q "Power Button" "$dev/device/name" || continue
        found=1
        power_off_on_press "/dev/input/${dev##*/}" &
    done
    [ "$found" = 1 ] || say "no power button found; virsh shutdown will not work"
}

disk_load() {
    # Write whole 1 MiB blocks to the first virtio disk, at most 16 MiB per pass, flushed,
    # so the host sees steady wr_bytes growth without the guest page cache hiding it.
    if [ ! -b /dev/vda ]; then
        say "no /dev/vda; disk load idles"
        idle_load
    fi
    sectors=$(cat /sys/block/vda/size)
    blocks=$((sectors / 2048))
    [ "$blocks" -gt 16 ] && blocks=16
    [ "$blocks" -lt 1 ] && blocks=1
    while :; do
        dd if=/dev/zero of=/dev/vda bs=1M count="$blocks" conv=fsync 2>/dev/null
        sleep 1
    done
}

cpu_load() {
    # md5sum of an endless stream: one process computing flat out. (A shell busy loop such as
    # "while :; do :; done" leaks memory in busybox ash and kills a 96 MiB guest in ~20 s.)
    while :; do md5sum /dev/zero; done
}

idle_load() {
    while :; do sleep 3600; done
}

ip link set lo up 2>/dev/null
watch_power_button
load=$(cmdline_value corral.load idle)
say "ready load=$load uptime=$(cut -d' ' -f1 /proc/uptime)"
case "$load" in
    cpu) cpu_load ;;
    disk) disk_load ;;
    idle) idle_load ;;
    *) say "unknown corral.load=$load; idling"; idle_load ;;
esac
