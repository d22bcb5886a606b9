#!/usr/bin/env bash
# Installs what building and testing Ferrocast needs on Debian/Ubuntu, and nothing when it is all
# there already. Safe to run again and again.
set -euo pipefail

packages=(
  build-essential pkg-config libssl-dev libsqlite3-dev
  # GStreamer: headers to build media/, plugins for the ladder (x264, AAC, TS mux, decoders).
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  # ffmpeg/ffprobe publish and decode in the end-to-end tests; psql talks to the test Postgres.
  ffmpeg postgresql-client
)

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

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (1.85 or newer) with rustup, then run make again." >&2
  exit 1
fi
