#!/usr/bin/env bash
# Installs everything the app and its tests need on Debian/Ubuntu: system packages, tauri-driver,
# s3s-fs, and the UI's and end-to-end suite's npm packages. Idempotent: what is present is skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

packages=(
  build-essential pkg-config curl file
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  xvfb xauth webkit2gtk-driver xdotool
  cmake nasm libheif-dev
  dbus dbus-x11 gnome-keyring libsecret-tools python3-dbusmock libglib2.0-bin
)
# A Node.js installed another way (nvm, NodeSource, the machine image) is kept; Vite needs 20.19 or later.
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: Rust is missing; install it with rustup (https://rustup.rs)" >&2; exit 1; }
if ! command -v tauri-driver >/dev/null; then
  echo "setup: installing tauri-driver"
  cargo install tauri-driver --version '^2' --locked --quiet
fi
# The real S3 server the storage tests run against; releases after 0.14.1 need a newer rustc.
if [ "$(s3s-fs --version 2>/dev/null)" != "s3s-fs 0.14.1" ]; then
  echo "setup: installing s3s-fs 0.14.1"
  cargo install s3s-fs@0.14.1 --locked --features binary --quiet
fi

for dir in ui tests/e2e; do
  # npm ci only when the lock file changed since the last install.
  stamp="$root/$dir/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$root/$dir/package-lock.json" -nt "$stamp" ]; then
    (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
