#!/usr/bin/env bash
# Runs the end-to-end suite inside the private session bus tests/run.sh gives it, beside a real
# Secret Service: gnome-keyring with its keyring in a scratch folder, unlocked as a login unlocks
# it. The app's keychain calls then never reach the host's keyring, nor start a locked one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
keyring="$(mktemp -d)"
runtime="$(mktemp -d)"
printf keyring-password | XDG_DATA_HOME="$keyring" XDG_RUNTIME_DIR="$runtime" \
  gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$keyring" "$runtime"' EXIT
for _ in $(seq 100); do
  gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.NameHasOwner org.freedesktop.secrets | grep -q true && break
  sleep 0.1
done
export E2E_KEYRING_HOME="$keyring"
cd "$here" && npm test --silent -- "$@"
