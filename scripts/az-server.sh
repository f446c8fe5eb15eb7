#!/usr/bin/env bash
# Throw-away Azure Blob Storage server for tests: Microsoft's Azurite (npm `azurite`, blob
# service only, in memory) on 127.0.0.1, with its own account and a random key.
#
#   scripts/az-server.sh install      # npm install azurite into .cache/azurite (once)
#   scripts/az-server.sh start DIR    # start; writes DIR/env (shell exports)
#   scripts/az-server.sh stop DIR     # kill the server started in DIR (by PID), wait
#
# DIR/env holds what a LabelJob's credentials Secret would: AZURE_STORAGE_ACCOUNT_NAME,
# AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_ENDPOINT (path-style, http://127.0.0.1:PORT/ACCOUNT),
# plus a container SAS token (AZURE_TEST_SAS) and AZURE_CONTAINER (created at start).
# Everything (log, pid file, env) lives under DIR. See scripts/README-emulators.md.
set -euo pipefail
NAME=az-server
# shellcheck source=scripts/emulator-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/emulator-common.sh"

AZURITE_VERSION=3.35.0   # the last release that runs on Node.js < 21
ACCOUNT=${AZ_TEST_ACCOUNT:-labeljob}
CONTAINER=${AZ_TEST_CONTAINER:-labeljob}
START_TIMEOUT=${AZ_START_TIMEOUT:-60}
PREFIX="$CACHE/azurite"
BIN="$PREFIX/node_modules/.bin/azurite-blob"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

installed_version() {
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PREFIX/node_modules/azurite/package.json" 2>/dev/null | head -n1
}

cmd_install() {
    if [ -x "$BIN" ] && [ "$(installed_version)" = "$AZURITE_VERSION" ]; then
        log "azurite $AZURITE_VERSION already in $PREFIX"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "npm not found: installing Debian's nodejs + npm"
        local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get install -y -qq --no-install-recommends nodejs npm >&2 \
            || { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends nodejs npm >&2; }
    fi
    log "installing azurite@$AZURITE_VERSION into $PREFIX (npm)"
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error \
        --omit=dev --omit=optional "azurite@$AZURITE_VERSION" >&2
    [ "$(installed_version)" = "$AZURITE_VERSION" ] || die "azurite $AZURITE_VERSION did not install"
}

# az_request DIR METHOD PATH_AND_QUERY: a Shared Key signed request to the server (stdlib
# Python; the key comes from the environment, never from the command line); prints the status
az_request() {
    AZ_PORT=$PORT AZ_ACCOUNT=$ACCOUNT python3 - "$@" <<'PY'
import base64, hashlib, hmac, os, sys, urllib.request, urllib.parse
from email.utils import formatdate
method, target = sys.argv[1], sys.argv[2]
account, key = os.environ["AZ_ACCOUNT"], base64.b64decode(os.environ["AZ_KEY"])
url = f"http://127.0.0.1:{os.environ['AZ_PORT']}/{account}/{target}"
parsed = urllib.parse.urlsplit(url)
headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
query = sorted(urllib.parse.parse_qsl(parsed.query))
resource = f"/{account}{parsed.path}" + "".join(f"\n{k}:{v}" for k, v in query)
canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
ctype = "application/octet-stream" if method == "PUT" else ""
if ctype:
    headers["Content-Type"] = ctype
# VERB, Content-Encoding, -Language, -Length (empty for 0), -MD5, -Type, Date, If-Modified-Since,
# If-Match, If-None-Match, If-Unmodified-Since, Range; then the x-ms- headers and the resource
to_sign = f"{method}\n\n\n\n\n{ctype}\n\n\n\n\n\n\n" + canon_headers + resource
sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
headers["Authorization"] = f"SharedKey {account}:{sig}"
req = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "PUT" else None)
try:
    with urllib.request.urlopen(req, timeout=10) as resp:
        print(resp.status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

# a container-scoped service SAS (read, add, create, write, delete, list; one day)
container_sas() {
    AZ_ACCOUNT=$ACCOUNT AZ_CONTAINER=$CONTAINER python3 - <<'PY'
import base64, datetime, hashlib, hmac, os, urllib.parse
account, container = os.environ["AZ_ACCOUNT"], os.environ["AZ_CONTAINER"]
key = base64.b64decode(os.environ["AZ_KEY"])
expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
fields = {"sp": "racwdl", "se": expiry, "spr": "https,http", "sv": "2021-08-06", "sr": "c"}
# service SAS, version 2020-12-06 and later: 16 lines
to_sign = "\n".join([fields["sp"], "", expiry, f"/blob/{account}/{container}", "", "", fields["spr"],
                     fields["sv"], fields["sr"], "", "", "", "", "", "", ""])
fields["sig"] = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(fields))
PY
}

cmd_start() {
    [ $# -eq 1 ] || usage
    local dir t0; t0=$(date +%s.%N)
    dir=$(fresh_dir "$1")
    [ -x "$BIN" ] || die "azurite not installed; run: $0 install"
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    PORT=$(free_port)
    # a fresh random account key per start; azurite reads accounts from AZURITE_ACCOUNTS
    export AZ_KEY; AZ_KEY=$(head -c 32 /dev/urandom | base64 -w0)
    mkdir -p "$dir/workspace"
    (cd "$dir/workspace" && AZURITE_ACCOUNTS="$ACCOUNT:$AZ_KEY" spawn "$dir" "$BIN" \
        --blobHost 127.0.0.1 --blobPort "$PORT" --inMemoryPersistence --extentMemoryLimit 1024 \
        --disableTelemetry --silent)
    local pid; pid=$(server_pid "$dir")
    answers() { [ "$(az_request GET '?comp=list')" = 200 ]; }
    wait_ready "$dir" "$START_TIMEOUT" "azurite (pid $pid)" answers
    check_loopback_only "$pid"
    local code; code=$(az_request PUT "$CONTAINER?restype=container")
    [ "$code" = 201 ] || { stop_server "$dir" || true; die "creating container $CONTAINER: HTTP $code"; }
    local sas; sas=$(container_sas)
    (umask 077; cat >"$dir/env" <<EOF
export AZURE_STORAGE_ACCOUNT_NAME=$ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY=$AZ_KEY
export AZURE_STORAGE_ENDPOINT=http://127.0.0.1:$PORT/$ACCOUNT
export AZURE_CONTAINER=$CONTAINER
export AZURE_TEST_SAS='$sas'
export AZURITE_PID=$pid
export AZURITE_DIR=$dir
EOF
    )
    log "azurite $AZURITE_VERSION ready at http://127.0.0.1:$PORT/$ACCOUNT container=$CONTAINER (pid $pid) in $(elapsed "$t0")s; source $dir/env"
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
