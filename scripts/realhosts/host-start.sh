#!/bin/bash
# Runs INSIDE a fresh private mount namespace (started by scripts/realhosts.sh through
# `unshare --mount --propagation private`): bind-mounts this host's own libvirt folders over
# the default paths, proves the mounts took, then starts libvirtd as a daemon.
#
# Why the proof: a second libvirtd on the default paths deletes the sockets of a daemon that
# is already running there, so libvirtd must never start unless every folder is our own.
set -euo pipefail

host_dir=$1
marker=$2

bind_own() {
    local source=$1 target=$2
    mkdir -p "$source" "$target"
    mount --bind "$source" "$target"
}

bind_own "$host_dir/etc/libvirt" /etc/libvirt
bind_own "$host_dir/run/libvirt" /run/libvirt
bind_own "$host_dir/lib/libvirt" /var/lib/libvirt
bind_own "$host_dir/cache/libvirt" /var/cache/libvirt
bind_own "$host_dir/log/libvirt" /var/log/libvirt

for folder in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
    if [ ! -e "$folder/$marker" ]; then
        echo "realhosts: $folder is not this host's own folder; refusing to start libvirtd" >&2
        exit 3
    fi
done

# libvirtd stays pinned to CPU 0: the host cpuid that libvirt checks its QEMU capability
# cache against differs between the CPUs of these machines, and a mismatch costs a fresh
# QEMU probe (~6 s per binary), at start and on later calls. QEMU processes are not bound
# by this: libvirt gives each guest every host CPU unless the domain XML pins it.
exec taskset -c 0 libvirtd --daemon --pid-file /run/libvirt/libvirtd.pid
