# PID 1 of the install test's machine until it becomes systemd (see machine.sh): mounts the machine's root and
# its own /proc, /sys, /run, /tmp and /dev, hides the folders it is given (the Swift toolchain, the checkout),
# then execs systemd.
set -euo pipefail
dir="$1"
read -r -a hidden <<<"$2" # folders the machine must not see, space-separated
root="$dir/root"

mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"

# A /dev with only the usual character devices, as a container has.
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"

# A server has no Swift: the package must run without the toolchain (nor anything of the build tree).
for folder in "${hidden[@]}"; do
    [ -d "$root$folder" ] && mount -t tmpfs -o mode=700 tmpfs "$root$folder"
done

cd "$root"
mkdir -p .host
pivot_root . .host
umount -l /.host
rmdir /.host

# Tells systemd it runs in a container, so units meant for real hardware stand aside.
export container=synwatch-test
exec /lib/systemd/systemd --system --unit=multi-user.target
