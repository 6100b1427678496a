#!/usr/bin/env bash
# llmproxy-netdata-discovery: Netdata collector jobs from Docker labels.
#
# Watches the Docker API (unix socket) for containers and Swarm services
# labelled
#
#   netdata.postgres.name / netdata.postgres.dsn        -> go.d/postgres.conf
#   netdata.prometheus.name / netdata.prometheus.url    -> go.d/prometheus.conf
#
# and writes Netdata's go.d job files, each only when its content changes
# (then the containers labelled NETDATA_RELOAD_LABEL=true, Netdata, are
# restarted through the same API: go.d reads its job files at start).
#
# In a container label, {{.IP}} is replaced by the container's address on
# the network whose name is NETDATA_DISCOVERY_NETWORK (or ends in
# _NETDATA_DISCOVERY_NETWORK, as a stack prefixes it) and {{.Name}} by its
# name, so that every replica of a service gets a job of its own.  Names
# several containers share get the replica's slot (or short id) appended.
# Service labels (deploy.labels) are used as they are, for things with no
# container on this node.
#
#   llmproxy-netdata-discovery           scan, then rescan on every event
#   llmproxy-netdata-discovery --once    scan once and exit
#
# A script (bash, curl, jq), not C: the work is reshaping JSON, which jq
# says in a few lines; curl speaks HTTP over the socket and streams
# /events; it runs from the gateway image, which has both.
set -euo pipefail

sock=${DOCKER_SOCKET:-/var/run/docker.sock}
out=${NETDATA_GO_D_DIR:-/etc/netdata/go.d}
network=${NETDATA_DISCOVERY_NETWORK:-monitoring}
reload_label=${NETDATA_RELOAD_LABEL:-}
resync=${NETDATA_DISCOVERY_RESYNC:-300}

log() { printf 'netdata-discovery: %s\n' "$*" >&2; }

api() {   # api METHOD PATH
    curl -fsS --unix-socket "$sock" --max-time 10 -X "$1" "http://docker$2"
}

# {postgres: [{name, dsn}], prometheus: [{name, url}]} from the containers
# and services
# shellcheck disable=SC2016
jobs_filter='
def addr($c):
  [($c.NetworkSettings.Networks // {}) | to_entries[]
   | select(.key == $net or (.key | endswith("_" + $net)))
   | .value.IPAddress | select(. != null and . != "")][0] // "";

def slot($c):
  (($c.Labels // {})["com.docker.swarm.task.name"] // "" | split(".")) as $t
  | if ($t | length) >= 3 and ($t[1] | test("^[0-9]+$")) then $t[1]
    else ($c.Id // "")[0:12] end;

def expand($c):
  gsub("\\{\\{ *\\.IP *\\}\\}"; addr($c))
  | gsub("\\{\\{ *\\.Name *\\}\\}"; (($c.Names // ["/"])[0] | ltrimstr("/")));

def from_containers($kind; $field):
  [ .containers[] | . as $c | ($c.Labels // {}) as $l
    | select($l["netdata." + $kind + ".name"] and
             $l["netdata." + $kind + "." + $field])
    | { name: $l["netdata." + $kind + ".name"],
        value: ($l["netdata." + $kind + "." + $field] | expand($c)),
        slot: slot($c) }
    | select(.value | test("\\{\\{ *\\.IP *\\}\\}|://:|@:") | not) ]
  | group_by(.name)
  | map(if length > 1 then map(.name += "-" + .slot) else . end)
  | add // []
  | map({name, ($field): .value});

def from_services($kind; $field):
  [ .services[] | (.Spec.Labels // {}) as $l
    | select($l["netdata." + $kind + ".name"] and
             $l["netdata." + $kind + "." + $field])
    | select($l["netdata." + $kind + "." + $field] | test("\\{\\{") | not)
    | { name: $l["netdata." + $kind + ".name"],
        ($field): $l["netdata." + $kind + "." + $field] } ];

def jobs($kind; $field):
  from_containers($kind; $field) as $c
  | ($c | map(.name)) as $names
  | ($c + (from_services($kind; $field)
           | map(select(.name as $n | any($names[]; . == $n) | not))))
  | unique_by(.name);

{services: .[0], containers: .[1]}
| { postgres: jobs("postgres"; "dsn"), prometheus: jobs("prometheus"; "url") }
'

# a go.d job file: JSON strings are valid YAML double-quoted scalars
render() {   # render KIND FIELD < jobs.json
    jq -r --arg kind "$1" --arg field "$2" '
      "# written by llmproxy-netdata-discovery from the Docker labels",
      "# netdata.\($kind).name and netdata.\($kind).\($field); do not edit",
      if (.[$kind] | length) == 0 then "jobs: []" else
        "jobs:",
        (.[$kind][] | "  - name: \(.name | tojson)",
                      "    \($field): \(.[$field] | tojson)")
      end'
}

# writes FILE from stdin when its content differs; status 0 if it changed
update() {   # update FILE
    local tmp=$1.tmp.$$
    cat > "$tmp"
    if cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        return 1
    fi
    chmod 644 "$tmp"
    mv -f "$tmp" "$1"
    log "wrote $1"
}

scan() {
    local services containers jobs changed=
    # a node that is not a Swarm manager answers 503: containers only
    services=$(api GET /services 2>/dev/null) || services='[]'
    containers=$(api GET /containers/json) || {
        log "the Docker API at $sock does not answer"
        return 1
    }
    jobs=$(printf '%s\n%s\n' "$services" "$containers" \
           | jq -s --arg net "$network" "$jobs_filter") || {
        log "unexpected answer from the Docker API"
        return 1
    }
    mkdir -p "$out"
    update "$out/postgres.conf" < <(render postgres dsn <<<"$jobs") \
        && changed=1
    update "$out/prometheus.conf" < <(render prometheus url <<<"$jobs") \
        && changed=1
    if [ -n "$changed" ] && [ -n "$reload_label" ]; then
        local id
        for id in $(jq -r --arg l "$reload_label" \
                       '.[] | select((.Labels // {})[$l] == "true") | .Id' \
                       <<<"$containers"); do
            log "restarting container ${id:0:12} to load the new jobs"
            api POST "/containers/$id/restart" >/dev/null \
                || log "could not restart ${id:0:12}"
        done
    fi
    return 0
}

if [ "${1:-}" = --once ]; then
    scan
    exit
fi

filters=$(jq -rn '{type: ["container", "service"],
                   event: ["start", "die", "destroy", "create", "update",
                           "remove"]} | tojson | @uri')
scan || true
while :; do
    # every event of interest triggers a scan; the stream ends after
    # $resync seconds (or when Docker restarts), then a full scan runs
    curl -sSN --unix-socket "$sock" --max-time "$resync" \
        "http://docker/events?filters=$filters" 2>/dev/null \
        | while IFS= read -r _; do scan || true; done || true
    scan || true
    sleep 1
done
