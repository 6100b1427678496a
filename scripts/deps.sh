#!/usr/bin/env bash
# Installs what llmproxy needs to build, run and test, from Debian's and npm's
# registries only.  Does nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential nginx-core nginx-dev libcjson-dev libcurl4-openssl-dev
      libpq-dev postgresql-15 libssl-dev libpcre2-dev zlib1g-dev
      wrk curl ca-certificates openssl clang)
# llmproxyctl import litellm reads LiteLLM's config.yaml
pkgs+=(libyaml-dev)
# stack/: its tests validate the stack files with a real compose parser and
# yamllint, and run the discovery generator (bash, curl, jq)
pkgs+=(docker-compose yamllint jq)
# the dashboard's browser tests: Debian's chromium, driven by puppeteer-core
pkgs+=(chromium)
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

# the SDKs the tests drive the gateway with, s3rver (backups), uPlot (the
# dashboard's charts) and puppeteer-core (its browser tests)
if [ ! -d node_modules/openai ] || [ ! -d node_modules/s3rver ] \
   || [ ! -d node_modules/uplot ] || [ ! -d node_modules/puppeteer-core ] \
   || [ package-lock.json -nt node_modules ]
then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
