# Shared by the scripts: the toolchain on PATH and the Debian packages the build and tests need.
set -euo pipefail

# The scripts run from the checkout's root; paths given on their command line are the caller's.
CALLER_DIR="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# from_caller PATH: PATH as the caller meant it, absolute.
from_caller() {
    case "$1" in
        /* | -) echo "$1" ;;
        *) echo "$CALLER_DIR/$1" ;;
    esac
}

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

# install_packages PACKAGE…: installs with apt-get whatever is missing (needs root).
install_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# libpcap, libsystemd and libyaml to build against. The tests read captures back with tcpdump, build veth pairs
# in network namespaces (iproute2) fed by tcpreplay, talk to the query socket with curl, run a real
# systemd-journald (systemd), real servers and clients (python3), nft for the example response hook and for the
# detector tests' random loss (nftables), man for the installed man pages (man-db), promtool, Prometheus and
# Alertmanager for the shipped rules (prometheus, prometheus-alertmanager), floods from a real host (hping3), and
# a real port scanner (nmap).
BUILD_PACKAGES=(libpcap-dev libsystemd-dev libyaml-dev pkg-config)
TEST_PACKAGES=(tcpdump tcpreplay iproute2 curl systemd python3 nftables man-db prometheus prometheus-alertmanager
    hping3 nmap)
# scripts/package finds the package's dependencies with dpkg-shlibdeps (dpkg-dev).
PACKAGE_PACKAGES=(dpkg-dev)

# run_idle COMMAND…: COMMAND at SCHED_IDLE (nice 19 where that is refused): it gets only CPU time nothing else wants.
run_idle() {
    if chrt --idle 0 true 2>/dev/null; then
        chrt --idle 0 "$@"
    else
        nice -n 19 "$@"
    fi
}
