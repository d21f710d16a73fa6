#!/bin/bash
# Real libvirt hypervisor hosts on one machine, for Corral's tests and CI.
#
#   bash scripts/realhosts.sh up [--hosts N]   # N privileged libvirtd "hosts" (default 2)
#   bash scripts/realhosts.sh status
#   bash scripts/realhosts.sh down
#
# Each host is a libvirtd in its own mount namespace whose /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt are folders under
# var/realhosts/hostK/. Guests are tiny TCG guests booted straight from a Debian cloud kernel
# and a busybox initramfs built once into var/realhosts/guest/. Live migration between hosts
# runs over 127.0.0.1 only. `up` writes var/realhosts/env for the tests (tests/realhost/).
# See docs/realhosts.md for the why of each step.
set -euo pipefail

readonly REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly HELPERS="$REPO_ROOT/scripts/realhosts"
readonly STATE_DIR=${CORRAL_REALHOSTS_DIR:-$REPO_ROOT/var/realhosts}
readonly GUEST_DIR="$STATE_DIR/guest"
readonly CAPS_DIR="$STATE_DIR/qemu-capabilities"
readonly ENV_FILE="$STATE_DIR/env"
readonly MARKER=".corral-realhost"
# iproute2 is only recommended by libvirt; the host bridges need it.
readonly PACKAGES=(libvirt-daemon-system libvirt-clients libvirt-dev pkg-config
    qemu-system-x86 qemu-utils busybox-static iproute2 qemu-guest-agent)
readonly GUEST_MODULES=(virtio_pci virtio_blk virtio_net virtio_balloon button evdev)
# The guest-agent variant (initrd-agent.img) adds the virtio-serial driver and Debian's qemu-ga.
readonly AGENT_MODULES=(virtio_console)
readonly AGENT_BINARY=/usr/sbin/qemu-ga
# A private set (tests/realhost/privateset.py) takes a range of its own: it may run beside the
# shared set, and all hosts' migrations listen on the same loopback.
readonly MIGRATION_PORT_BASE=${CORRAL_REALHOST_PORT_BASE:-49152}
readonly MIGRATION_PORTS_PER_HOST=64
readonly START_TIMEOUT_S=90
readonly NETWORK_NAME=corral

log() { echo "realhosts: $*" >&2; }
readonly T0=$EPOCHREALTIME
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
die() { log "error: $*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

host_dir() { echo "$STATE_DIR/host$1"; }
host_socket() { echo "$(host_dir "$1")/run/libvirt/libvirt-sock"; }
host_uri() { echo "qemu+unix:///system?socket=$(host_socket "$1")"; }
host_pid_file() { echo "$(host_dir "$1")/run/libvirt/libvirtd.pid"; }
# Linux caps interface names at 15 characters; the state folder's hash keeps two checkouts apart.
host_bridge() { echo "crl$(echo "$STATE_DIR" | sha256sum | cut -c1-6)-$1"; }
port_min() { echo $((MIGRATION_PORT_BASE + ($1 - 1) * MIGRATION_PORTS_PER_HOST)); }
port_max() { echo $(($(port_min "$1") + MIGRATION_PORTS_PER_HOST - 1)); }

# ---------------------------------------------------------------- packages and devices

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' \
            || echo "$pkg"
    done
}

ensure_packages() {
    local missing
    missing=$(missing_packages | tr '\n' ' ')
    [ -z "${missing// /}" ] && return 0
    if ! is_root; then
        die "missing Debian packages: $missing- run as root: apt-get update && apt-get install -y --no-install-recommends ${PACKAGES[*]}"
    fi
    log "installing missing packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# udev would have done this: without it libvirt re-probes QEMU on every call (notes/libvirt.md).
# Only when needed: a changed /dev/kvm ctime also makes libvirt re-probe QEMU.
fix_devices() {
    if [ -e /dev/kvm ] && [ "$(stat -c '%G:%a' /dev/kvm)" != "kvm:660" ]; then
        getent group kvm >/dev/null || groupadd --system kvm
        chown root:kvm /dev/kvm
        chmod 0660 /dev/kvm
    fi
    if [ -e /dev/net/tun ] && [ "$(stat -c '%a' /dev/net/tun)" != "666" ]; then
        chmod 0666 /dev/net/tun
    fi
    return 0
}

# ---------------------------------------------------------------- guest artifacts

# A cloud kernel .deb already at hand (ours first, then apt's cache), else apt-get download.
kernel_deb() {
    local found
    found=$(newest_deb "$GUEST_DIR")
    [ -n "$found" ] || found=$(newest_deb /var/cache/apt/archives)
    if [ -n "$found" ]; then
        echo "$found"
        return
    fi
    download_kernel_deb
}

newest_deb() {
    ls -1 "$1"/linux-image-[0-9]*-cloud-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -n1
}

download_kernel_deb() {
    local package
    package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$package" ] && is_root; then
        apt-get update -qq
        package=$(apt-cache depends linux-image-cloud-amd64 \
            | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [ -n "$package" ] || die "apt knows no linux-image-cloud-amd64; run apt-get update as root"
    log "downloading $package"
    (cd "$GUEST_DIR" && apt-get download -qq "$package" 2>/dev/null) \
        || die "apt-get download $package failed; check the package registry is reachable"
    newest_deb "$GUEST_DIR"
}

module_path() {
    local modules_root=$1 name=$2 path
    path=$(find "$modules_root" -name "$name.ko" -print -quit)
    [ -n "$path" ] || path=$(find "$modules_root" -name "${name//_/-}.ko" -print -quit)
    [ -n "$path" ] || die "kernel module $name not found in the cloud kernel package"
    echo "$path"
}

# Copies a module and its dependencies (from the .modinfo "depends=" word) into the initramfs,
# appending each to lib/modules/order after its dependencies.
add_module() {
    local modules_root=$1 tree=$2 name=$3 path deps dep
    grep -qx "$name" "$tree/lib/modules/order" 2>/dev/null && return 0
    path=$(module_path "$modules_root" "$name")
    deps=$(busybox strings "$path" | sed -n 's/^depends=//p' | head -n1)
    for dep in ${deps//,/ }; do
        add_module "$modules_root" "$tree" "$dep"
    done
    cp "$path" "$tree/lib/modules/$name.ko"
    echo "$name" >>"$tree/lib/modules/order"
}

# The initramfs tree every guest boots: static busybox, /init and the modules, in order.
initrd_tree() {
    local extracted=$1 tree=$2 module modules_root
    mkdir -p "$tree"/{bin,dev,proc,sys,tmp,lib/modules}
    cp /bin/busybox "$tree/bin/busybox"
    cp "$HELPERS/guest-init.sh" "$tree/init"
    chmod 0755 "$tree/init" "$tree/bin/busybox"
    mknod -m 0600 "$tree/dev/console" c 5 1
    : >"$tree/lib/modules/order"
    modules_root=$(echo "$extracted"/lib/modules/*)
    for module in "${GUEST_MODULES[@]}"; do
        add_module "$modules_root" "$tree" "$module"
    done
}

pack_initrd() {
    local tree=$1 out=$2
    (cd "$tree" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -9) >"$out.tmp"
    mv "$out.tmp" "$out"
}

build_initrd() {
    local extracted=$1 out=$2 tree
    tree=$(mktemp -d)
    initrd_tree "$extracted" "$tree"
    pack_initrd "$tree" "$out"
    rm -rf "$tree"
}

# The same tree plus virtio_console (appended to the module order, so /init loads it), qemu-ga
# with the shared libraries ldd names (at their own paths) and /agent-init, the kernel's rdinit
# for this variant (tests/realhost/guest.py, agent=True).
build_agent_initrd() {
    local extracted=$1 out=$2 tree module lib modules_root
    tree=$(mktemp -d)
    initrd_tree "$extracted" "$tree"
    modules_root=$(echo "$extracted"/lib/modules/*)
    for module in "${AGENT_MODULES[@]}"; do
        add_module "$modules_root" "$tree" "$module"
    done
    mkdir -p "$tree/usr/sbin"
    cp "$AGENT_BINARY" "$tree/usr/sbin/qemu-ga"
    for lib in $(ldd "$AGENT_BINARY" | grep -o '/[^ ]*'); do
        mkdir -p "$tree$(dirname "$lib")"
        cp -L "$lib" "$tree$lib"
    done
    cp "$HELPERS/guest-agent-init.sh" "$tree/agent-init"
    chmod 0755 "$tree/agent-init"
    pack_initrd "$tree" "$out"
    rm -rf "$tree"
}

# What the artifacts were built from; a change (new kernel, new /init) triggers a rebuild.
guest_recipe() {
    echo "kernel=$(basename "$1")"
    echo "init=$(sha256sum "$HELPERS/guest-init.sh" | cut -d' ' -f1)"
    echo "modules=${GUEST_MODULES[*]}"
}

ensure_guest() {
    mkdir -p "$GUEST_DIR"
    local deb recipe extracted
    deb=$(kernel_deb)
    recipe=$(guest_recipe "$deb")
    if [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd.img" ] \
        && [ "$(cat "$GUEST_DIR/recipe" 2>/dev/null)" = "$recipe" ]; then
        return 0
    fi
    log "building guest kernel and initramfs from $(basename "$deb")"
    extracted=$(mktemp -d)
    dpkg-deb -x "$deb" "$extracted"
    cp "$extracted"/boot/vmlinuz-* "$GUEST_DIR/vmlinuz.tmp"
    mv "$GUEST_DIR/vmlinuz.tmp" "$GUEST_DIR/vmlinuz"
    build_initrd "$extracted" "$GUEST_DIR/initrd.img"
    rm -rf "$extracted"
    echo "$recipe" >"$GUEST_DIR/recipe"
}

agent_recipe() {
    guest_recipe "$1"
    echo "agent-init=$(sha256sum "$HELPERS/guest-agent-init.sh" | cut -d' ' -f1)"
    echo "agent=$(sha256sum "$AGENT_BINARY" | cut -d' ' -f1) modules=${AGENT_MODULES[*]}"
}

# The guest-agent variant, built beside the shared artifacts; the other guests never use it.
ensure_agent_guest() {
    local deb recipe extracted
    if [ ! -x "$AGENT_BINARY" ]; then
        log "no $AGENT_BINARY (package qemu-guest-agent): the guest-agent variant is not built"
        return 0
    fi
    deb=$(kernel_deb)
    recipe=$(agent_recipe "$deb")
    if [ -f "$GUEST_DIR/initrd-agent.img" ] \
        && [ "$(cat "$GUEST_DIR/recipe-agent" 2>/dev/null)" = "$recipe" ]; then
        return 0
    fi
    log "building the guest-agent initramfs"
    extracted=$(mktemp -d)
    dpkg-deb -x "$deb" "$extracted"
    build_agent_initrd "$extracted" "$GUEST_DIR/initrd-agent.img"
    rm -rf "$extracted"
    echo "$recipe" >"$GUEST_DIR/recipe-agent"
}

# ---------------------------------------------------------------- one host

new_uuid() { cat /proc/sys/kernel/random/uuid; }

write_libvirtd_conf() {
    cat >"$1/etc/libvirt/libvirtd.conf" <<EOF
# Corral realhost $2 (written by scripts/realhosts.sh). Root-only UNIX socket, no TCP.
host_uuid = "$3"
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:file:/var/log/libvirt/libvirtd.log${CORRAL_REALHOSTS_DEBUG:+ 1:file:/var/log/libvirt/debug.log}"
${CORRAL_REALHOSTS_DEBUG:+log_filters = \"1:qemu.qemu_capabilities 4:*\"}
EOF
}

write_qemu_conf() {
    cat >"$1/etc/libvirt/qemu.conf" <<EOF
# Corral realhost $2 (written by scripts/realhosts.sh).
# QEMU runs as root and touches no file ownership: the guest kernel and initrd are shared.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# QEMU's own output goes to /var/log/libvirt/qemu/NAME.log without a virtlogd per host.
stdio_handler = "file"
# Live migration listens and connects on loopback only, in a port range of this host's own.
# libvirt refuses "127.0.0.1" here ("must not be the address of the local machine"); its
# IPv4-mapped IPv6 form passes that check and still binds to loopback only, so an incoming
# migration can never listen on another interface. Callers pass the URI tcp://127.0.0.1.
migration_address = "::ffff:127.0.0.1"
migration_port_min = $(port_min "$2")
migration_port_max = $(port_max "$2")
# QEMU stays in the host mount namespace (no private /dev per guest), so realhosts.sh down finds every
# process the host started by that namespace alone.
namespaces = [ ]
vnc_listen = "127.0.0.1"
spice_listen = "127.0.0.1"
EOF
}

prepare_host() {
    local k=$1 dir uuid sub
    dir=$(host_dir "$k")
    uuid=$(new_uuid)
    rm -rf "$dir"
    for sub in etc run lib cache log; do
        mkdir -p "$dir/$sub/libvirt"
        touch "$dir/$sub/libvirt/$MARKER"
    done
    mkdir -p "$dir/etc/libvirt/qemu/networks/autostart" "$dir/etc/libvirt/storage" \
        "$dir/etc/libvirt/nwfilter" "$dir/lib/libvirt/images" "$dir/log/libvirt/qemu"
    chmod 0700 "$dir/run/libvirt"
    write_libvirtd_conf "$dir" "$k" "$uuid"
    write_qemu_conf "$dir" "$k"
    echo "$uuid" >"$dir/host_uuid"
}

launch_host() {
    local k=$1 dir
    dir=$(host_dir "$k")
    [ "${#dir}" -lt 80 ] || die "state folder path $dir is too long for UNIX sockets; set CORRAL_REALHOSTS_DIR"
    setsid unshare --mount --propagation private \
        bash "$HELPERS/host-start.sh" "$dir" "$MARKER" >>"$dir/start.log" 2>&1 </dev/null 9>&-
}

daemon_pid() {
    local pid_file
    pid_file=$(host_pid_file "$1")
    [ -s "$pid_file" ] || return 1
    local pid
    pid=$(cat "$pid_file")
    [ -d "/proc/$pid" ] && grep -q libvirtd "/proc/$pid/comm" 2>/dev/null && echo "$pid"
}

host_answers() {
    virsh -q -c "$(host_uri "$1")" version >/dev/null 2>&1
}

host_failed() {
    grep -qs "Driver state initialization failed" "$(host_dir "$1")/log/libvirt/libvirtd.log"
}

wait_for_host() {
    local k=$1 deadline=$((SECONDS + START_TIMEOUT_S))
    until host_answers "$k"; do
        if [ "$SECONDS" -ge "$deadline" ] || host_failed "$k"; then
            tail -n 20 "$(host_dir "$k")/start.log" "$(host_dir "$k")/log/libvirt/libvirtd.log" >&2 || true
            die "host$k did not start (logs above)"
        fi
        sleep 0.2
    done
    local pid
    pid=$(daemon_pid "$k") || die "host$k answers but its libvirtd pid file is missing"
    readlink "/proc/$pid/ns/mnt" >"$(host_dir "$k")/mntns"
    echo "$pid" >"$(host_dir "$k")/libvirtd.pid"
}

# Probe QEMU's capabilities now so that the first test does not pay for it.
warm_host() {
    virsh -q -c "$(host_uri "$1")" domcapabilities --virttype qemu --arch x86_64 >/dev/null
}

# An isolated L2 network per host for guest NICs: a bridge with no address made here, handed to
# libvirt in bridge mode, so libvirt touches no firewall rule and nothing routes off the bridge.
# Every host names it the same ("corral"), so a guest on it can migrate between hosts.
start_network() {
    local k=$1 bridge uri xml
    bridge=$(host_bridge "$k")
    uri=$(host_uri "$k")
    ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
    ip link set "$bridge" up
    xml="$(host_dir "$k")/network-$NETWORK_NAME.xml"
    cat >"$xml" <<EOF
<network><name>$NETWORK_NAME</name><forward mode='bridge'/><bridge name='$bridge'/></network>
EOF
    virsh -q -c "$uri" net-define "$xml" >/dev/null
    virsh -q -c "$uri" net-start "$NETWORK_NAME" >/dev/null
    virsh -q -c "$uri" net-autostart "$NETWORK_NAME" >/dev/null
}

stop_network() {
    local bridge
    bridge=$(host_bridge "$1")
    if ip link show "$bridge" >/dev/null 2>&1; then
        ip link del "$bridge"
    fi
}

# ---------------------------------------------------------------- env, status

recorded_hosts() {
    local dir
    for dir in "$STATE_DIR"/host[0-9]*; do
        [ -d "$dir" ] && echo "${dir##*/host}"
    done | sort -n
}

write_env() {
    local n=$1 k uris=() ports=()
    for k in $(seq 1 "$n"); do
        uris+=("$(host_uri "$k")")
        ports+=("$(port_min "$k")-$(port_max "$k")")
    done
    local IFS=,
    cat >"$ENV_FILE.tmp" <<EOF
CORRAL_REALHOST_URIS=${uris[*]}
CORRAL_GUEST_KERNEL=$GUEST_DIR/vmlinuz
CORRAL_GUEST_INITRD=$GUEST_DIR/initrd.img
CORRAL_GUEST_AGENT_INITRD=$GUEST_DIR/initrd-agent.img
CORRAL_REALHOST_MIGRATION_PORTS=${ports[*]}
CORRAL_REALHOST_NETWORK=$NETWORK_NAME
CORRAL_REALHOST_DIR=$STATE_DIR
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

all_up() {
    local n=$1 k count
    [ -f "$ENV_FILE" ] && [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd.img" ] || return 1
    count=$(recorded_hosts | wc -l)
    [ "$count" = "$n" ] || return 1
    for k in $(recorded_hosts); do
        daemon_pid "$k" >/dev/null && host_answers "$k" || return 1
    done
}

cmd_status() {
    local k pid domains any=0
    is_root || log "not root: the hosts' sockets are root-only, so they show as DOWN"
    for k in $(recorded_hosts); do
        any=1
        if pid=$(daemon_pid "$k") && host_answers "$k"; then
            domains=$(virsh -q -c "$(host_uri "$k")" list --all --name | grep -c . || true)
            echo "host$k: up (libvirtd pid $pid, $domains domains) $(host_uri "$k")"
        else
            echo "host$k: DOWN $(host_uri "$k")"
        fi
    done
    [ "$any" = 1 ] || { echo "no realhosts; run: bash scripts/realhosts.sh up"; return 3; }
    [ -f "$ENV_FILE" ] && cat "$ENV_FILE"
    all_up "$(recorded_hosts | wc -l)"
}

# ---------------------------------------------------------------- up, down

# libvirtd probes every QEMU binary before it answers (~6 s each on 2 cores). The probe result
# is the same for every host here, so the first host's cache seeds the others (libvirt checks
# the cache against the binaries and re-probes by itself if it no longer matches).
seed_capabilities() {
    local dir
    dir="$(host_dir "$1")/cache/libvirt/qemu/capabilities"
    mkdir -p "$dir"
    cp "$CAPS_DIR"/*.xml "$dir/" 2>/dev/null || true
}

save_capabilities() {
    local dir
    dir="$(host_dir "$1")/cache/libvirt/qemu/capabilities"
    ls "$dir"/*.xml >/dev/null 2>&1 || return 0
    rm -rf "$CAPS_DIR.tmp"
    cp -r "$dir" "$CAPS_DIR.tmp"
    rm -rf "$CAPS_DIR"
    mv "$CAPS_DIR.tmp" "$CAPS_DIR"
}

start_host() {
    prepare_host "$1"
    seed_capabilities "$1"
    launch_host "$1" || die "host$1 failed to start: $(tail -n 5 "$(host_dir "$1")/start.log")"
}

start_hosts() {
    local n=$1 k first=1
    if ! ls "$CAPS_DIR"/*.xml >/dev/null 2>&1; then
        start_host 1
        wait_for_host 1
        save_capabilities 1
        first=2
    fi
    for k in $(seq "$first" "$n"); do start_host "$k"; done
    for k in $(seq "$first" "$n"); do wait_for_host "$k"; done
    save_capabilities 1
}

cmd_up() {
    local n=$1 k
    if all_up "$n"; then
        ensure_guest  # a changed /init or kernel is rebuilt even while the hosts run
        ensure_agent_guest
        log "already up ($n hosts)"
        cat "$ENV_FILE"
        return 0
    fi
    [ -z "$(recorded_hosts)" ] || cmd_down
    ensure_packages
    fix_devices
    ensure_guest
    ensure_agent_guest
    log "packages, devices and guest artifacts ready at $(elapsed)s"
    start_hosts "$n"
    log "daemons answer at $(elapsed)s"
    for k in $(seq 1 "$n"); do
        warm_host "$k" &
        start_network "$k"
    done
    wait
    write_env "$n"
    log "$n hosts up (QEMU probed) in $(elapsed)s"
    cat "$ENV_FILE"
}

# Every process still in the host's private mount namespace: libvirtd, QEMU and helpers.
namespace_pids() {
    local ns=$1
    [ -n "$ns" ] || return 0
    # "mnt:[123]" holds glob brackets: match on the inode number alone.
    find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/mnt' -lname "mnt:?${ns//[^0-9]/}?" \
        2>/dev/null | cut -d/ -f3
}

# QEMU of this host by libvirt's pid files, should one have left the namespace after all.
qemu_pids() {
    local pid_file pid
    for pid_file in "$1"/run/libvirt/qemu/*.pid; do
        [ -s "$pid_file" ] || continue
        pid=$(cat "$pid_file")
        grep -qs qemu "/proc/$pid/comm" && echo "$pid"
    done
    return 0
}

stop_domains() {
    local k=$1 uri name
    uri=$(host_uri "$k")
    host_answers "$k" || return 0
    for name in $(virsh -q -c "$uri" list --name 2>/dev/null); do
        virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || true
    done
}

kill_and_wait() {
    local signal=$1 wait_s=$2 pids=("${@:3}") deadline
    [ "${#pids[@]}" -gt 0 ] || return 0
    kill "-$signal" "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + wait_s))
    while [ "$SECONDS" -lt "$deadline" ]; do
        local alive=0 pid
        for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}

stop_host() {
    local k=$1 dir ns pid pids
    dir=$(host_dir "$k")
    ns=$(cat "$dir/mntns" 2>/dev/null || true)
    stop_domains "$k"
    pid=$(daemon_pid "$k" || cat "$dir/libvirtd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q libvirtd "/proc/$pid/comm"; then
        kill_and_wait TERM 15 "$pid" || kill_and_wait KILL 5 "$pid" || true
    fi
    mapfile -t pids < <(namespace_pids "$ns"; qemu_pids "$dir")
    kill_and_wait TERM 5 "${pids[@]}" || kill_and_wait KILL 5 "${pids[@]}" || true
    mapfile -t pids < <(namespace_pids "$ns"; qemu_pids "$dir")
    [ "${#pids[@]}" = 0 ] || die "host$k: processes ${pids[*]} survived SIGKILL"
    if grep -q " $dir/" /proc/self/mounts; then
        die "host$k: mounts under $dir are visible outside its namespace; not deleting it"
    fi
    stop_network "$k"
    rm -rf "$dir"
}

cmd_down() {
    local k
    for k in $(recorded_hosts); do
        stop_host "$k"
        log "host$k stopped"
    done
    rm -f "$ENV_FILE"
}

# ---------------------------------------------------------------- main

usage() {
    echo "usage: bash scripts/realhosts.sh up [--hosts N] | down | status" >&2
    exit 2
}

main() {
    local command=${1:-}
    [ -n "$command" ] || usage
    shift
    local hosts=2
    while [ $# -gt 0 ]; do
        case "$1" in
            --hosts) hosts=${2:-}; shift 2 ;;
            --hosts=*) hosts=${1#--hosts=}; shift ;;
            *) usage ;;
        esac
    done
    [[ "$hosts" =~ ^[1-9][0-9]?$ ]] || die "--hosts takes a number from 1 to 99"
    case "$command" in
        up | down) ;;
        status) cmd_status; return ;;
        *) usage ;;
    esac
    if ! is_root; then
        [ "$command" = down ] || ensure_packages
        die "the hosts are privileged libvirtd instances: run as root (sudo bash scripts/realhosts.sh $command)"
    fi
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 600 9 || die "another realhosts.sh holds $STATE_DIR/.lock"
    case "$command" in
        up) cmd_up "$hosts" ;;
        down) cmd_down ;;
    esac
}

main "$@"
