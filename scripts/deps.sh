#!/bin/sh
# Installs the Debian packages Vigil needs to build and test, when any is missing.
# Idempotent and silent when everything is present. Usage: scripts/deps.sh [--bench]
set -eu

PACKAGES="build-essential pkg-config libcurl4-openssl-dev libcjson-dev libsqlite3-dev
libyaml-dev libgit2-dev libmbedtls-dev libmicrohttpd-dev zlib1g-dev check prometheus
clang-format cppcheck clang-14 libclang-rt-14-dev git golang-go python3-pytest curl jq
chromium libpq-dev postgresql libhiredis-dev redis-server"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    for p in $PACKAGES; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$st" in
            *"install ok installed"*) ;;
            *) missing="$missing $p" ;;
        esac
    done
else
    missing="$PACKAGES"
fi

# The dashboard (make ui) needs node and npm. A Node.js from elsewhere (nodesource's nodejs
# package bundles npm, and conflicts with Debian's npm) is used as it is: Debian's nodejs and
# npm are installed only when either command is missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps.sh: this system has no apt-get; install these packages (or their equivalents) by hand:" >&2
    echo "  $(echo $PACKAGES) (and nodejs, npm)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.sh: missing packages:$missing; run as root or install sudo" >&2
        exit 1
    fi
fi

echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
