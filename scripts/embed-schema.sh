#!/usr/bin/env bash
# Turns configs/schema/NNN_name.sql files into a C table for llmproxyctl,
# so the binary carries its migrations.
set -euo pipefail
echo "/* generated from configs/schema by scripts/embed-schema.sh */"
echo "static const llmp_migration_t  llmp_migrations[] = {"
for f in "$@"; do
    base=$(basename "$f" .sql)
    version=$((10#${base%%_*}))
    echo "    { $version, \"$base\","
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/      "/' -e 's/$/\\n"/' "$f"
    echo "    },"
done
echo "    { 0, NULL, NULL }"
echo "};"
