#!/bin/busybox sh
# rdinit of the guest-agent variant of Corral's test guest (initrd-agent.img, built by
# scripts/realhosts.sh beside the shared initrd.img; the other guests never run this).
#
# It exists so that an application-consistent backup can be tested against a real QEMU guest
# agent: the guest mounts the ext4 filesystem on its virtio disk at /data, runs Debian's
# qemu-ga on the virtio-serial port named org.qemu.guest_agent.0 (which can then really
# freeze /data), and keeps appending to /data/churn so that the filesystem is busy when a
# backup starts. The usual /init (guest-init.sh) still does everything else: this script only
# starts the agent part in the background and hands over to it.

b=/bin/busybox
agent_port() {
    for port in /sys/class/virtio-ports/*; do
        [ "$($b cat "$port/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue
        echo "/dev/${port##*/}"
        return 0
    done
    return 1
}

say() { echo "corral-agent: $*" >/dev/console; }

# /init mounts /sys and /dev and loads the modules (virtio_console among them); wait for it.
agent_part() {
    tries=0
    until [ -b /dev/vda ] && port=$(agent_port) && [ -c "$port" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 600 ]; then
            say "no /dev/vda or no agent port after 60 s"
            return 1
        fi
        $b sleep 0.1
    done
    $b mkdir -p /data /run/qga
    if ! $b mount -t ext4 /dev/vda /data 2>/tmp/mount.err; then
        say "mount /dev/vda failed: $($b cat /tmp/mount.err)"
        return 1
    fi
    say "mounted /dev/vda on /data"
    # -v: the agent logs each command it runs (guest-fsfreeze-freeze, -thaw) to its log file.
    /usr/sbin/qemu-ga -m virtio-serial -p "$port" -t /run/qga -l /run/qga/qga.log -v \
        -f /run/qga/qga.pid -d || { say "qemu-ga did not start"; return 1; }
    say "ready agent=$port"
    n=0
    while :; do
        n=$((n + 1))
        echo "line $n" >>/data/churn
        $b sync
        $b sleep 0.2
    done
}

# ash opens /dev/null as a background job's stdin: devtmpfs first (/init mounts it again,
# harmlessly: it is one shared instance).
$b mount -t devtmpfs devtmpfs /dev
agent_part &
exec /init
