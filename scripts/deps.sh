#!/usr/bin/env bash
# Installs what llmproxy needs to build, run and test, from Debian's and npm's
# registries only.  Does nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential nginx-core nginx-dev libcjson-dev libcurl4-openssl-dev
      libpq-dev postgresql-15 libssl-dev libpcre2-dev zlib1g-dev
      wrk curl ca-certificates openssl clang)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root)" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# the SDKs the tests drive the gateway with
if [ ! -d node_modules/openai ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi

# the dashboard's browser tests (t/integration/18-dashboard.test.js):
# Debian's chromium, driven by puppeteer-core (package-lock.json)
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "ok installed"
then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian package: chromium (run as root)" >&2
        exit 1
    fi
    echo "installing: chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -d node_modules/puppeteer-core ] || [ ! -d node_modules/uplot ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
