#!/usr/bin/env bash
# The module's call graph between files, checked against its floors.
#
#   scripts/callgraph.sh [OBJDIR]      (make callgraph)
#
# From the module's object files (nginx's build puts them in OBJDIR,
# default build/nginx/objs/addon/ngx_llmproxy_module) nm tells which global
# symbols each file defines and which it uses; a use of another file's
# symbol is an edge between the two files.  scripts/layers.txt declares the
# floors, bottom first, and the few symbols a lower floor may still name.
# Prints the graph, top floor first (the order a request goes down it), and
# exits 1 on an edge that goes up, on files that call each other in a
# circle (on one floor), or on a file the floors do not declare.
# common/ is below every floor and is not drawn.
set -u
cd "$(dirname "$0")/.."

objdir=${1:-build/nginx/objs/addon/ngx_llmproxy_module}
layers=${LAYERS:-scripts/layers.txt}
prefix=ngx_http_llmproxy_

command -v nm >/dev/null || { echo "callgraph: nm missing (binutils)"; exit 2; }
ls "$objdir"/*.o >/dev/null 2>&1 \
    || { echo "callgraph: no objects in $objdir: run make module"; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# floors: "FILE FLOOR" for each declared file; allowed: "SYMBOL"
awk -v floors="$tmp/floors" -v allowed="$tmp/allowed" '
    { sub(/#.*/, "") }
    NF == 0 { next }
    $1 == "allow" { print $2 > allowed; next }
    { for (i = 1; i <= NF; i++) print $i, n > floors; n++ }
' "$layers"
touch "$tmp/allowed"

for o in "$objdir"/*.o; do
    f=$(basename "$o" .o); f=${f#"$prefix"}
    nm -g --defined-only "$o" | awk -v f="$f" 'NF == 3 { print $3, f }'
    nm -u "$o" | awk -v f="$f" '{ print $NF, f }' >> "$tmp/uses"
done | sort -u > "$tmp/defs"
sort -u -o "$tmp/uses" "$tmp/uses"

fail=0

# every object declared on a floor, and every declared file built
cut -d' ' -f1 "$tmp/floors" | sort > "$tmp/declared"
for o in "$objdir"/*.o; do f=$(basename "$o" .o); echo "${f#"$prefix"}"; done \
    | sort > "$tmp/built"
for f in $(comm -13 "$tmp/declared" "$tmp/built"); do
    echo "not ok - $prefix$f.c is on no floor of $layers"; fail=1
done
for f in $(comm -23 "$tmp/declared" "$tmp/built"); do
    echo "not ok - $layers names $f, which is not built"; fail=1
done

# edges "FROM TO SYMBOL", a file's use of its own symbols left out
join "$tmp/uses" "$tmp/defs" | awk '$2 != $3 { print $2, $3, $1 }' \
    | sort -u > "$tmp/edges"

awk -v fl="$tmp/floors" -v al="$tmp/allowed" '
    BEGIN {
        while ((getline l < fl) > 0) { split(l, a, " "); floor[a[1]] = a[2] }
        while ((getline l < al) > 0) allow[l] = 1
    }
    !($1 in floor) || !($2 in floor) { next }
    floor[$2] > floor[$1] && !($3 in allow) {
        printf "not ok - upward: %s (floor %d) -> %s (floor %d): %s\n",
               $1, floor[$1], $2, floor[$2], $3
        bad = 1
    }
    END { exit bad }
' "$tmp/edges" || fail=1

# no circle either, not even among the files of one floor (tsort names
# the files of a loop on stderr)
grep -vwFf "$tmp/allowed" "$tmp/edges" | awk '{ print $1, $2 }' | sort -u \
    > "$tmp/pairs"
if ! tsort "$tmp/pairs" > /dev/null 2> "$tmp/loop"; then
    echo "not ok - files that call each other in a circle:" \
         $(sed -n 's/^tsort: //p' "$tmp/loop" | grep -v ': input contains a loop:')
    fail=1
fi

# the picture: each floor from the top, each file with the files it uses
# (a symbol of the allow list is not drawn: every file names it)
echo "floors of ngx_llmproxy_module/$prefix*.c, top first; each file"
echo "with the files it calls (all on lower floors, or its own):"
echo
awk -v fl="$tmp/floors" -v al="$tmp/allowed" '
    BEGIN {
        while ((getline l < fl) > 0) {
            split(l, a, " "); floor[a[1]] = a[2]; order[++n] = a[1]
            if (a[2] > top) top = a[2]
        }
        while ((getline l < al) > 0) allow[l] = 1
    }
    !($3 in allow) && !(($1, $2) in seen) {
        seen[$1, $2] = 1; to[$1] = to[$1] " " $2
    }
    END {
        for (k = top; k >= 0; k--) {
            for (i = 1; i <= n; i++) {
                f = order[i]
                if (floor[f] != k) continue
                line = sprintf("  %2d  %-19s", k, f)
                m = split(to[f], t, " ")
                for (j = 1; j <= m; j++) {
                    w = (j == 1 ? " -> " : " ") t[j]
                    if (length(line) + length(w) > 78) {
                        print line; line = sprintf("%27s", "") t[j]
                    } else {
                        line = line w
                    }
                }
                sub(/ +$/, "", line); print line
            }
        }
    }
' "$tmp/edges"
echo

if [ "$fail" -ne 0 ]; then
    echo "callgraph: upward calls, circles or undeclared files (see not ok)"
    exit 1
fi
echo "callgraph: every call goes down a floor"
