# shellcheck shell=bash
# Sourced by scripts/images*.sh: podman settings that work in an unprivileged VM such as CI's.
#   runc           crun 1.8 (Debian bookworm) refuses hybrid cgroup hierarchies
#   netns = host   builds and test runs reach the package registries without slirp/CNI
#   ulimits        the container keeps limits the VM can grant (no CAP_SYS_RESOURCE)
# Written to .cache/images/containers.conf and used through CONTAINERS_CONF (the machine's
# own /etc/containers is left alone); set CONTAINERS_CONF yourself to use another file.
podman_env() {
    [[ -n "${CONTAINERS_CONF:-}" ]] && return 0
    local dir="${ROOT:?}/.cache/images"
    mkdir -p "$dir"
    cat > "$dir/containers.conf.partial" <<'CONF'
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
    mv -f "$dir/containers.conf.partial" "$dir/containers.conf"
    export CONTAINERS_CONF="$dir/containers.conf"
}
