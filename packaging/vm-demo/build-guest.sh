#!/usr/bin/env bash
# The guest of the VM live-migration demo (`npm run demo:vm`, docs/vm-demo.md): a Debian
# cloud kernel and a busybox initramfs, built once into a cache directory and reused.
#
#   build-guest.sh [CACHE_DIR]       (default: $LIME_VM_CACHE or /var/cache/lime-vm-demo)
#
# Prints, on its last line, "KERNEL=<path> INITRD=<path>". Idempotent: when the cache holds
# a guest built by this very script (its hash is in the stamp) it only checks that QEMU is
# there and prints the paths. Nothing is installed into the system but QEMU (and cpio-less
# tools: the archive is made by busybox itself): the kernel and busybox packages are
# downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into the cache.
#
# The guest's /init: loads the virtio-net driver (a module in the cloud kernel) and its
# dependencies, sets eth0's address from the kernel command line (lime.ip=A.B.C.D/N), starts
# a persistent TCP echo server (busybox nc -ll -e cat, port lime.echo=7000) and prints
# LIME-GUEST-READY and then a heartbeat every second on the serial console.
set -euo pipefail

CACHE=${1:-${LIME_VM_CACHE:-/var/cache/lime-vm-demo}}
SELF=$(readlink -f "$0")
say() { echo "build-guest: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "needs root (it installs QEMU with apt-get when missing)"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null
    updated=1
  fi
}
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-system-x86)
command -v modinfo >/dev/null 2>&1 || need_pkgs+=(kmod)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v gzip >/dev/null 2>&1 || need_pkgs+=(gzip)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  apt_update
  say "installing ${need_pkgs[*]}"
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

mkdir -p "$CACHE"
script_sum=$(sha256sum "$SELF" | cut -d' ' -f1)
STAMP="$CACHE/guest.stamp"
KERNEL="$CACHE/vmlinuz"
INITRD="$CACHE/initramfs.cpio.gz"
if [ -f "$STAMP" ] && [ -f "$KERNEL" ] && [ -f "$INITRD" ] && grep -q "^script=$script_sum\$" "$STAMP"; then
  echo "KERNEL=$KERNEL INITRD=$INITRD"
  exit 0
fi

# Which kernel: the versioned package the cloud meta-package depends on now.
find_kernel_pkg() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n1
}
kpkg=$(find_kernel_pkg || true)
if [ -z "$kpkg" ]; then
  apt_update
  kpkg=$(find_kernel_pkg || true)
fi
[ -n "$kpkg" ] || { say "no linux-image-*-cloud-amd64 package found (apt-cache depends linux-image-cloud-amd64)"; exit 1; }
kver=${kpkg#linux-image-}

DEBS="$CACHE/debs"
mkdir -p "$DEBS"
fetch() { # fetch PACKAGE: download its .deb into $DEBS unless already there
  if ! ls "$DEBS/$1"_*.deb >/dev/null 2>&1; then
    say "apt-get download $1"
    # _apt cannot write into root's directories; download in a scratch dir it can use.
    local tmp
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -qq "$1" 2>/dev/null) || { apt_update; (cd "$tmp" && apt-get download -qq "$1"); }
    mv "$tmp"/*.deb "$DEBS/"
    rm -rf "$tmp"
  fi
}
fetch "$kpkg"
fetch busybox-static

ROOTS="$CACHE/extract"
rm -rf "$ROOTS"
mkdir -p "$ROOTS"
say "unpacking $kpkg and busybox-static into $ROOTS"
dpkg-deb -x "$(ls "$DEBS/$kpkg"_*.deb | head -n1)" "$ROOTS"
dpkg-deb -x "$(ls "$DEBS"/busybox-static_*.deb | head -n1)" "$ROOTS"
MODDIR="$ROOTS/lib/modules/$kver"
BUSYBOX="$ROOTS/bin/busybox"
[ -x "$BUSYBOX" ] || { say "busybox not found in busybox-static"; exit 1; }
[ -f "$ROOTS/boot/vmlinuz-$kver" ] || { say "no vmlinuz in $kpkg"; exit 1; }

# The modules virtio-net needs, dependencies first (a module may also be built in: then
# it is in modules.builtin and needs nothing).
declare -A seen=()
order=()
add_module() {
  local name=$1 file deps d
  name=${name//-/_}
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  file=$(find "$MODDIR/kernel" \( -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" \) | head -n1)
  if [ -z "$file" ]; then
    if grep -q "/$name.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; then return 0; fi
    say "module $name: neither a module nor built in"
    exit 1
  fi
  deps=$(modinfo -F depends "$file")
  for d in ${deps//,/ }; do add_module "$d"; done
  order+=("$file")
}
for m in virtio_pci virtio_net; do
  if grep -q "^CONFIG_${m^^}=y" "$ROOTS/boot/config-$kver"; then continue; fi
  add_module "$m"
done

STAGE="$CACHE/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,dev,proc,sys,etc,lib/modules,tmp}
cp "$BUSYBOX" "$STAGE/bin/busybox"
ln -s busybox "$STAGE/bin/sh"
: >"$STAGE/etc/modules.order"
for f in "${order[@]}"; do
  base=$(basename "$f")
  case $base in
    *.xz) xz -dc "$f" >"$STAGE/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.zst) zstd -qdc "$f" >"$STAGE/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) cp "$f" "$STAGE/lib/modules/$base" ;;
  esac
  echo "$base" >>"$STAGE/etc/modules.order"
done
mknod -m 600 "$STAGE/dev/console" c 5 1
mknod -m 666 "$STAGE/dev/null" c 1 3

cat >"$STAGE/init" <<'EOF'
#!/bin/sh
# lime VM demo guest: network up, TCP echo server, heartbeat on the serial console.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo "lime-guest: kernel $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
for m in $(cat /etc/modules.order); do insmod "/lib/modules/$m" || echo "lime-guest: insmod $m failed"; done
ip=10.77.0.10/24
echo_port=7000
for a in $(cat /proc/cmdline); do
  case $a in
    lime.ip=*) ip=${a#lime.ip=} ;;
    lime.echo=*) echo_port=${a#lime.echo=} ;;
  esac
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
# IPv4 only: no IPv6 neighbour discovery or router solicitations on the wire.
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
[ -e /proc/sys/net/ipv6/conf/eth0 ] && echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6
ip link set lo up
ip addr add "$ip" dev eth0
ip link set eth0 up
echo "lime-guest: eth0 $(cat /sys/class/net/eth0/address) $ip; TCP echo on port $echo_port"
nc -ll -p "$echo_port" -e /bin/cat &
echo "LIME-GUEST-READY"
n=0
while true; do
  sleep 1
  n=$((n + 1))
  echo "lime-guest: alive $n"
done
EOF
chmod 755 "$STAGE/init"

say "building $INITRD (${#order[@]} modules)"
(cd "$STAGE" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | "$STAGE/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -9 >"$INITRD.tmp"
mv "$INITRD.tmp" "$INITRD"
cp "$ROOTS/boot/vmlinuz-$kver" "$KERNEL"
rm -rf "$STAGE" "$ROOTS"
printf 'script=%s\nkernel=%s\n' "$script_sum" "$kpkg" >"$STAMP"
say "guest ready: $kpkg, $(du -h "$INITRD" | cut -f1) initramfs"
echo "KERNEL=$KERNEL INITRD=$INITRD"
