# A throwaway Debian "machine" for the install test: this host's root seen through an overlay (so nothing
# written inside reaches the host), without the Swift toolchain or the project's checkout, with its own /run,
# /dev, cgroup tree and network namespace, and a real systemd as its PID 1.
#
# machine_create NAME   makes the overlay and the network namespace NAME (the caller adds links to it).
# machine_boot          starts systemd and waits until it answers; machine_halt stops it (the disk stays).
# machine_run CMD…      runs CMD inside the machine (its root, namespaces and cgroup).
# machine_destroy       halts and removes everything machine_create made.

MACHINE_NAME=""
MACHINE_DIR=""
MACHINE_PID=""
MACHINE_CGROUP=""

machine_create() {
    MACHINE_NAME="$1"
    MACHINE_DIR="$(mktemp -d "/tmp/$MACHINE_NAME.XXXXXX")"
    mkdir -p "$MACHINE_DIR"/{upper,work,root}
    ip netns add "$MACHINE_NAME"
    ip -n "$MACHINE_NAME" link set lo up
}

# The overlay's writable layer: files put here before boot appear in the machine.
machine_disk() { echo "$MACHINE_DIR/upper"; }

# The machine's PID 1, inside new PID, mount, UTS, IPC and cgroup namespaces and the machine's network one.
# It mounts its own root first; the first cgroup-v2 tree of the host is given to it as its whole hierarchy.
machine_boot() {
    MACHINE_CGROUP="/sys/fs/cgroup/unified/$MACHINE_NAME"
    [ -d /sys/fs/cgroup/unified ] || MACHINE_CGROUP="/sys/fs/cgroup/$MACHINE_NAME"
    mkdir -p "$MACHINE_CGROUP"
    # What a server does not have: the Swift toolchain's own folder (never / or /usr) and the checkout.
    local toolchain hidden=("$MACHINE_CHECKOUT" /root)
    toolchain="$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")"
    case "$toolchain" in / | /usr) ;; *) hidden+=("$toolchain") ;; esac
    # The launcher moves itself into the machine's cgroup, then becomes PID 1 of the new namespaces.
    setsid bash -c '
        echo $$ > "$1/cgroup.procs"
        exec ip netns exec "$2" unshare --pid --fork --mount --uts --ipc --cgroup --propagation private \
            bash "$3" "$4" "$5"
    ' launcher "$MACHINE_CGROUP" "$MACHINE_NAME" "$MACHINE_LIB_DIR/machine-init.sh" "$MACHINE_DIR" "${hidden[*]}" \
        >"$MACHINE_DIR/console.log" 2>&1 </dev/null &
    local deadline=$((SECONDS + 60))
    MACHINE_PID=""
    while [ $SECONDS -lt $deadline ]; do
        MACHINE_PID="$(machine_pid)"
        if [ -n "$MACHINE_PID" ] && machine_run timeout 10 systemctl is-system-running --wait >/dev/null 2>&1; then
            return 0
        fi
        # is-system-running --wait returns non-zero for "degraded" too: accept any settled state.
        if [ -n "$MACHINE_PID" ]; then
            case "$(machine_run systemctl is-system-running 2>/dev/null)" in
                running | degraded) return 0 ;;
            esac
        fi
        sleep 0.5
    done
    echo "the machine's systemd did not come up in 60 s; its console:" >&2
    cat "$MACHINE_DIR/console.log" >&2
    return 1
}

# The host PID of the machine's systemd (PID 1 inside), once it runs.
machine_pid() {
    local pid
    for pid in $(cat "$MACHINE_CGROUP/cgroup.procs" 2>/dev/null) $(find "$MACHINE_CGROUP" -name cgroup.procs \
        -exec cat {} + 2>/dev/null); do
        if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/systemd/systemd ] \
            && grep -q '^NSpid:.*[[:space:]]1$' "/proc/$pid/status" 2>/dev/null; then
            echo "$pid"
            return 0
        fi
    done
}

machine_run() {
    nsenter -t "$MACHINE_PID" -m -p -u -i -n -C -r -w -- "$@"
}

# Halts systemd (SIGRTMIN+14) and waits for it to end.
machine_halt() {
    if [ -z "$MACHINE_PID" ]; then
        machine_remove_cgroups # a boot that failed may have left processes and cgroups
        return 0
    fi
    kill -s RTMIN+14 "$MACHINE_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$MACHINE_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -s KILL "$MACHINE_PID" 2>/dev/null || true
    while kill -0 "$MACHINE_PID" 2>/dev/null; do sleep 0.1; done
    MACHINE_PID=""
    machine_remove_cgroups
}

# Removes the machine's cgroup tree, deepest first (a cgroup can only be removed once empty).
machine_remove_cgroups() {
    [ -n "$MACHINE_CGROUP" ] && [ -d "$MACHINE_CGROUP" ] || return 0
    local procs
    for procs in $(find "$MACHINE_CGROUP" -name cgroup.procs); do
        xargs -r kill -s KILL <"$procs" 2>/dev/null || true
    done
    sleep 0.2
    find "$MACHINE_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

machine_destroy() {
    machine_halt
    [ -n "$MACHINE_NAME" ] && ip netns delete "$MACHINE_NAME" 2>/dev/null || true
    [ -n "$MACHINE_DIR" ] && rm -rf "$MACHINE_DIR"
    MACHINE_NAME=""
    MACHINE_DIR=""
}

MACHINE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MACHINE_CHECKOUT="$(cd "$MACHINE_LIB_DIR/../.." && pwd)"
