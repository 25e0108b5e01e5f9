#!/usr/bin/env bash
# One-time, as root on Debian/Ubuntu: what the container rehearsal needs from the system.
#   podman + runc     the container engine (no Docker engine needed)
#   debootstrap       the Debian root file system the stand-in images start from
#   dnsname           name resolution between containers (CNI), as compose service names need
# and the engine settings these machines need (the default crun and rlimits fail here, and there is
# no systemd for cgroups or journald). Idempotent: packages already there and a containers.conf
# already written are left alone.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "setup-podman.sh: run it as root (it installs Debian packages)" >&2
    exit 2
fi
missing=()
for tool in podman runc debootstrap /usr/lib/cni/dnsname; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc debootstrap uidmap slirp4netns fuse-overlayfs iptables \
        golang-github-containernetworking-plugin-dnsname >/dev/null
fi
conf=/etc/containers/containers.conf
if [ ! -s "$conf" ]; then
    mkdir -p /etc/containers
    cat > "$conf" <<'CONF'
# Written by local/astro_rehearsal/setup-podman.sh
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
echo "podman ready: $(podman --version)"
