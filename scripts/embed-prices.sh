#!/usr/bin/env bash
# Turns configs/prices.json into a C string for llmproxyctl, so the
# binary carries the price list it compiles configs with.
set -euo pipefail
echo "/* generated from $1 by scripts/embed-prices.sh */"
echo "static const char  llmp_prices_json[] ="
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$1"
echo "    ;"
