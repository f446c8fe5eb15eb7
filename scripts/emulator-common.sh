# Helpers shared by scripts/az-server.sh and scripts/gcs-server.sh (sourced, not run).
#
# The callers set NAME (log prefix) before sourcing. Every emulator runs in the foreground
# of its own session (setsid), its PID in DIR/server.pid; `stop` kills that PID only (never
# by name) and waits until the process has exited, a zombie counting as exited.

log() { echo "$NAME: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CACHE="$ROOT/.cache"

# a free TCP port on 127.0.0.1 (the kernel's choice)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# /proc/PID/stat: state (3rd field) and start time (22nd); the command name (2nd) is in
# parentheses and may hold spaces, so cut after ')'
proc_state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1, $20}'; }

# has the process (PID, STARTTIME) exited? (a zombie has closed its sockets and files)
proc_gone() {
    local st; st=$(proc_state "$1") || return 0
    [ -n "$st" ] || return 0
    set -- "$2" $st
    [ "$3" != "$1" ] || [ "$2" = Z ] || [ "$2" = X ]
}

# spawn DIR CMD...: start CMD detached in its own session, output to DIR/server.log,
# PID and start time to DIR/server.pid
spawn() {
    local dir=$1; shift
    setsid "$@" </dev/null >>"$dir/server.log" 2>&1 &
    local pid=$!
    echo "$pid $(proc_state "$pid" | awk '{print $2}')" >"$dir/server.pid"
}

# is the process recorded in DIR/server.pid still the one we started, and alive?
server_alive() {
    local pid start
    read -r pid start <"$1/server.pid" 2>/dev/null || return 1
    [ -n "$pid" ] && ! proc_gone "$pid" "$start"
}

server_pid() { awk '{print $1}' "$1/server.pid" 2>/dev/null || true; }

# wait_ready DIR TIMEOUT DESC CMD...: retry CMD every 0.1 s until it succeeds; fail at once
# when the server exits, or after TIMEOUT seconds (the log tail goes to stderr)
wait_ready() {
    local dir=$1 timeout=$2 desc=$3; shift 3
    local deadline=$(( $(date +%s) + timeout ))
    until "$@" >/dev/null 2>&1; do
        if ! server_alive "$dir"; then
            tail -n 30 "$dir/server.log" >&2 || true
            die "$desc exited during start"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 30 "$dir/server.log" >&2 || true
            die "$desc did not answer within ${timeout}s"
        fi
        sleep 0.1
    done
}

# the ports the process PID listens on are all on 127.0.0.1 (checked after start)
check_loopback_only() {
    local pid=$1 bad
    command -v ss >/dev/null 2>&1 || return 0
    bad=$(ss -Hltnp 2>/dev/null | grep -F "pid=$pid," | awk '{print $4}' | grep -v '^127\.' || true)
    [ -z "$bad" ] || die "server (pid $pid) listens on $bad, not only on 127.0.0.1"
}

# stop DIR: SIGTERM the recorded PID, SIGKILL after 20 s, wait until it has exited
stop_server() {
    local dir=$1 pid start i
    read -r pid start <"$dir/server.pid" 2>/dev/null || { log "no server.pid in $dir"; return 0; }
    if proc_gone "$pid" "$start"; then return 0; fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 200); do proc_gone "$pid" "$start" && break; sleep 0.1; done
    if ! proc_gone "$pid" "$start"; then
        log "pid $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 100); do proc_gone "$pid" "$start" && break; sleep 0.1; done
    fi
    proc_gone "$pid" "$start" || { log "pid $pid still alive"; return 1; }
    log "stopped pid $pid ($dir)"
}

# fresh_dir DIR: create DIR, refuse one that already ran a server; prints its real path
fresh_dir() {
    mkdir -p "$1"
    local dir; dir=$(cd "$1" && pwd -P)
    [ ! -e "$dir/server.pid" ] || die "$dir already held a server; give a fresh directory"
    echo "$dir"
}
