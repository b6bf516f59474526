# Sourced by the benchmark scripts that compare vessel with podman.
#
# podman_prepare WORK: installs podman if missing, writes the containers.conf
# that shared/ENVIRONMENT.md gives for this machine (cgroupfs, file events,
# default ulimits within the hard limits, runc since crun refuses the hybrid
# cgroup layout), exports CONTAINERS_CONF, and sets $podman to a podman
# command line with its own --root/--runroot under WORK.
podman_prepare() {
  local work=$1
  command -v podman >/dev/null || apt-get install -y podman >/dev/null || apt-get install -y podman >/dev/null
  cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
CONF
  export CONTAINERS_CONF=$work/containers.conf
  podman="podman --root $work/podman --runroot $work/podman-run --storage-driver overlay"
}

# unmount_under WORK: lazily unmounts whatever is still mounted below WORK.
unmount_under() {
  grep " $1" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
