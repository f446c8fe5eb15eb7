#!/usr/bin/env bash
# Throw-away S3-compatible server for tests: a one-node Ceph cluster
# (1 mon + 1 memstore OSD) with the RADOS Gateway (beast) on 127.0.0.1.
#
#   scripts/s3-server.sh install      # apt-get the Debian ceph packages (root)
#   scripts/s3-server.sh start DIR    # start; writes DIR/env (shell exports)
#   scripts/s3-server.sh stop DIR     # kill the daemons started in DIR, wait
#
# Everything (config, state, logs, pid files, sockets) lives under DIR; no
# daemon listens on anything but 127.0.0.1; /etc/ceph is never read.
# See scripts/README-s3.md.
set -euo pipefail

ACCESS_KEY=${S3_TEST_ACCESS_KEY:-labeljobtestkey}
SECRET_KEY=${S3_TEST_SECRET_KEY:-labeljobtestsecret}
BUCKET=${S3_TEST_BUCKET:-labeljob}
REGION=us-east-1
START_TIMEOUT=${S3_START_TIMEOUT:-120}   # seconds, per wait step
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

log() { echo "s3-server: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- install
cmd_install() {
    local missing=0 b
    for b in radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool; do
        command -v "$b" >/dev/null 2>&1 || missing=1
    done
    command -v curl >/dev/null 2>&1 || missing=1
    if [ "$missing" = 0 ]; then
        log "ceph binaries already installed ($(ceph --version 2>/dev/null | awk '{print $3}'))"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "install needs root (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local pkgs=(radosgw ceph-mon ceph-osd ceph-common curl)
    # apt-get update only when the package lists do not know the packages yet
    if ! apt-cache show radosgw >/dev/null 2>&1 || ! apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    fi
    ceph --version
}

# ---------------------------------------------------------------- helpers
free_port() {
    local py
    py=$(command -v /usr/bin/python3 || command -v python3 || true)
    if [ -n "$py" ]; then
        "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p
    for _ in $(seq 200); do
        p=$(( (RANDOM % 20000) + 30000 ))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    die "no free port found"
}

# is PID alive and one of ours (its command line mentions our DIR)?
our_pid_alive() {
    local pid=$1 dir=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/ceph.conf"
}

tail_log() {
    local f=$1
    if [ -f "$f" ]; then
        echo "----- tail of $f -----" >&2
        tail -n 40 "$f" >&2
        echo "-----" >&2
    fi
}

# wait_until TIMEOUT DESC CMD...   (retries CMD every 0.5s)
wait_until() {
    local timeout=$1 desc=$2; shift 2
    local deadline=$(( $(date +%s) + timeout ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { log "timed out waiting for $desc"; return 1; }
        sleep 0.5
    done
}

# start a daemon in the foreground (-f), detached into its own session;
# its pid goes to DIR/NAME.pid
spawn() {
    local name=$1; shift
    setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
    echo $! >"$DIR/$name.pid"
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

pid_of() { cat "$DIR/$1.pid" 2>/dev/null || true; }

daemon_alive() { our_pid_alive "$(pid_of "$1")" "$DIR"; }

# abort start: show the log, stop what was started, exit 1
fail_start() {
    local what=$1; shift
    log "ERROR: start failed: $what"
    local f
    for f in "$@"; do tail_log "$f"; done
    if [ "${S3_KEEP_ON_FAIL:-0}" = 1 ]; then
        log "S3_KEEP_ON_FAIL=1: leaving daemons running in $DIR"
    else
        stop_daemons "$DIR" || true
    fi
    exit 1
}

# ---------------------------------------------------------------- start
cmd_start() {
    [ $# -eq 1 ] || usage
    mkdir -p "$1"
    DIR=$(cd "$1" && pwd -P)
    local conf=$DIR/ceph.conf
    local t0; t0=$(date +%s.%N)

    for b in radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool curl; do
        command -v "$b" >/dev/null 2>&1 || die "$b not found; run: $0 install"
    done
    local n
    for n in rgw osd mon; do
        if daemon_alive "$n"; then die "a cluster is already running in $DIR ($n pid $(pid_of "$n")); stop it first"; fi
    done
    [ ! -e "$DIR/mon.a" ] || die "$DIR already holds a cluster (mon.a); give a fresh directory"

    mkdir -p "$DIR"/{log,run,crash,mon.a,osd.0,rgw}
    local fsid mon_port rgw_port osd_uuid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    mon_port=$(free_port)
    rgw_port=$(free_port)
    while [ "$rgw_port" = "$mon_port" ]; do rgw_port=$(free_port); done

    cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
cluster network = 127.0.0.1/32
ms bind ipv6 = false
ms bind msgr1 = false

auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# with auth none there is no session key, so "secure" (encrypted) msgr2
# mode cannot work; daemons like radosgw default to secure for the mon
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
keyring = $DIR/keyring

run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.daemon.pid
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
log to syslog = false
err to syslog = false
clog to syslog = false
mon cluster log file = $DIR/log/cluster.\$channel.log
debug ms = 0

osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail crit = 0
mon data avail warn = 0

[mon]
# commit osdmap changes quickly (default batches for 1 s); rgw makes
# a dozen of them on first start
paxos propose interval = 0.05
paxos min wait = 0.01
mon data = $DIR/\$name
mon osd auto mark new in = true

[osd]
osd data = $DIR/\$name
osd objectstore = memstore
memstore device bytes = 2147483648
osd crush update on start = false
osd class update on start = false

[client.rgw.a]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw enable usage log = false
rgw thread pool size = 64
EOF
    : >"$DIR/keyring"
    local C=(-c "$conf")

    # ---- monitor
    monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >"$DIR/log/monmaptool.out" 2>&1 \
        || fail_start "monmaptool" "$DIR/log/monmaptool.out"
    ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mon-mkfs.out" 2>&1 \
        || fail_start "ceph-mon --mkfs" "$DIR/log/mon-mkfs.out" "$DIR/log/mon.a.log"
    spawn mon ceph-mon "${C[@]}" -f -i a
    wait_until "$START_TIMEOUT" "monitor" ceph "${C[@]}" --connect-timeout 5 mon stat \
        || fail_start "monitor did not come up" "$DIR/log/mon.a.log" "$DIR/log/mon.out"
    log "mon up on 127.0.0.1:$mon_port ($(elapsed "$t0")s)"

    # ---- OSD (memstore)
    local osd_id
    osd_id=$(ceph "${C[@]}" osd new "$osd_uuid" 2>"$DIR/log/osd-new.out") \
        || fail_start "ceph osd new" "$DIR/log/osd-new.out" "$DIR/log/mon.a.log"
    [ "$osd_id" = 0 ] || fail_start "unexpected osd id '$osd_id'" "$DIR/log/osd-new.out"
    ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1 \
        || fail_start "ceph-osd --mkfs" "$DIR/log/osd-mkfs.out" "$DIR/log/osd.0.log"
    ceph "${C[@]}" osd crush add osd.0 1.0 host=localhost root=default >"$DIR/log/osd-crush.out" 2>&1 \
        || fail_start "ceph osd crush add" "$DIR/log/osd-crush.out" "$DIR/log/mon.a.log"
    spawn osd ceph-osd "${C[@]}" -f -i 0
    osd_up() { daemon_alive osd && ceph "${C[@]}" --connect-timeout 5 osd dump 2>/dev/null | grep -q '^osd\.0 up .* in '; }
    wait_until "$START_TIMEOUT" "osd.0 up" osd_up \
        || fail_start "osd.0 did not come up" "$DIR/log/osd.0.log" "$DIR/log/osd.out"

    # ---- RADOS gateway
    spawn rgw radosgw "${C[@]}" -f -n client.rgw.a
    rgw_up() {
        daemon_alive rgw || return 2
        curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$rgw_port/"
    }
    local deadline=$(( $(date +%s) + START_TIMEOUT ))
    while :; do
        local rc=0; rgw_up || rc=$?
        [ $rc = 0 ] && break
        [ $rc = 2 ] && fail_start "radosgw exited" "$DIR/log/client.rgw.a.log" "$DIR/log/rgw.out"
        [ "$(date +%s)" -lt "$deadline" ] || fail_start "radosgw did not answer on 127.0.0.1:$rgw_port" "$DIR/log/client.rgw.a.log" "$DIR/log/rgw.out"
        sleep 0.5
    done

    # ---- user + bucket
    radosgw-admin "${C[@]}" user create --uid test --display-name test \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >"$DIR/log/user-create.out" 2>&1 \
        || fail_start "radosgw-admin user create" "$DIR/log/user-create.out"
    local code=
    deadline=$(( $(date +%s) + 30 ))
    while :; do
        code=$(curl -s -o "$DIR/log/bucket-create.out" -w '%{http_code}' --max-time 10 -X PUT \
            -H "x-amz-content-sha256: $EMPTY_SHA256" \
            --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
            "http://127.0.0.1:$rgw_port/$BUCKET") || true
        [ "$code" = 200 ] && break
        # the new user may take a moment to be visible to the gateway
        [ "$(date +%s)" -lt "$deadline" ] || fail_start "creating bucket $BUCKET: HTTP $code" "$DIR/log/bucket-create.out" "$DIR/log/client.rgw.a.log"
        sleep 0.5
    done

    cat >"$DIR/env" <<EOF
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
export AWS_DEFAULT_REGION=$REGION
export AWS_ENDPOINT_URL=http://127.0.0.1:$rgw_port
export AWS_ALLOW_HTTP=true
export S3_BUCKET=$BUCKET
export S3_SERVER_DIR=$DIR
export CEPH_CONF=$conf
export CEPH_MON_PID=$(pid_of mon)
export CEPH_OSD_PID=$(pid_of osd)
export CEPH_RGW_PID=$(pid_of rgw)
EOF
    log "S3 (radosgw) ready at http://127.0.0.1:$rgw_port bucket=$BUCKET in $(elapsed "$t0")s; source $DIR/env"
}

# ---------------------------------------------------------------- stop
# /proc/PID/stat fields: state (3rd) and start time (22nd); the command
# name (2nd) is in parentheses and may contain spaces, so cut after ')'
proc_state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1, $20}'; }

# has the process (PID, STARTTIME) fully exited?  A zombie counts as exited:
# its sockets and files are closed.  Note /proc/PID/cmdline turns empty early
# in exit, long before the sockets are released, so it can't be used here.
proc_gone() {
    local st; st=$(proc_state "$1") || return 0
    [ -n "$st" ] || return 0
    set -- "$2" $st
    [ "$3" != "$1" ] || [ "$2" = Z ] || [ "$2" = X ]
}

# kill the daemons whose pid files are in $1 (rgw, osd, mon in that order)
# and wait until each has exited
stop_daemons() {
    local dir=$1 n pid start i rc=0
    for n in rgw osd mon; do
        pid=$(cat "$dir/$n.pid" 2>/dev/null || true)
        our_pid_alive "$pid" "$dir" || continue
        start=$(proc_state "$pid" | awk '{print $2}')
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 150); do            # up to 30 s
            proc_gone "$pid" "$start" && break
            sleep 0.2
        done
        if ! proc_gone "$pid" "$start"; then
            log "$n (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 100); do
                proc_gone "$pid" "$start" && break
                sleep 0.2
            done
        fi
        if ! proc_gone "$pid" "$start"; then log "$n (pid $pid) still alive"; rc=1; fi
    done
    return $rc
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    [ -d "$1" ] || die "no such directory: $1"
    local dir; dir=$(cd "$1" && pwd -P)
    stop_daemons "$dir"
    log "stopped daemons in $dir"
}

# ----------------------------------------------------------------
[ $# -ge 1 ] || usage
cmd=$1; shift
case "$cmd" in
    install) cmd_install "$@" ;;
    start)   cmd_start "$@" ;;
    stop)    cmd_stop "$@" ;;
    *)       usage ;;
esac
