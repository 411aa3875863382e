#!/usr/bin/env bash
# Stream a workflow's state until it is final (server streaming).
#
#   watch.sh [options] NAME
#
# Each event is the workflow's whole state. When the connection drops
# (UNAVAILABLE, for example a server restart) or a connection's deadline
# passes, watch.sh reconnects with the last event's resource_version, so no
# state is repeated and none is missed. Exits 0 once the workflow Succeeded,
# 1 when it Failed or hit an Error, and grpcurl's code (64 + status code)
# when the watch fails.
set -euo pipefail
shopt -s lastpipe
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UNAVAILABLE_EXIT=$((64 + 14))
DEADLINE_EXIT=$((64 + 4))

usage() {
  cat <<'USAGE'
usage: watch.sh [options] NAME
      --resource-version V   only states newer than V (resume an earlier watch)
  -o, --output json|phase    print each event (default) or one line per event: NAME PHASE VERSION
environment: TREADLE_SERVER (default 127.0.0.1:7733), TREADLE_MAX_TIME (deadline of one
connection, default 3600), TREADLE_WATCH_RETRIES (reconnects without progress, default 5)
USAGE
}

version=""
output=json
name=""
while (($#)); do
  case $1 in
    --resource-version) version=${2:?$1 needs a version}; shift 2 ;;
    -o | --output) output=${2:?$1 needs json or phase}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option $1" ;;
    *) [[ -z $name ]] || usage_error "one NAME only"; name=$1; shift ;;
  esac
done
[[ -n $name ]] || usage_error "NAME is required"
[[ $output == json || $output == phase ]] || usage_error "-o takes json or phase"

phase=""
# Reads grpcurl's stream of JSON messages, passing them on; notes each event's version and phase.
follow() {
  local line event_phase="" event_version=""
  # workflow.metadata.resource_version and workflow.status.phase: three levels deep.
  local version_line='^      "resource_version": "([0-9]+)"' phase_line='^      "phase": "WORKFLOW_PHASE_([A-Z]+)"'
  while IFS= read -r line; do
    [[ $output == json ]] && printf '%s\n' "$line"
    if [[ $line =~ $version_line ]]; then
      event_version=${BASH_REMATCH[1]}
    elif [[ $line =~ $phase_line ]]; then
      event_phase=${BASH_REMATCH[1]}
    elif [[ $line == "}" ]]; then
      version=$event_version
      phase=$event_phase
      [[ $output == phase ]] && printf '%s %s %s\n' "$name" "${phase:-UNSPECIFIED}" "$version"
      event_phase="" event_version=""
    fi
  done
}

# A failed connection's error is shown only when watch.sh gives up; reconnects say one line.
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
retries_left=${TREADLE_WATCH_RETRIES:-5}
while true; do
  request="{\"name\": $(json_string "$name"), \"resourceVersion\": $(json_string "$version")}"
  seen_before=$version
  set +e
  call WatchWorkflow "${TREADLE_MAX_TIME:-3600}" <<<"$request" 2>"$errors" | follow
  status=${PIPESTATUS[0]}
  set -e
  ((status != 0)) || break
  [[ $version == "$seen_before" ]] || retries_left=${TREADLE_WATCH_RETRIES:-5}
  if (((status != UNAVAILABLE_EXIT && status != DEADLINE_EXIT) || retries_left-- == 0)); then
    cat "$errors" >&2
    exit "$status"
  fi
  printf '%s: %s; reconnecting after resource_version %s\n' \
    "${0##*/}" "${STATUS_NAMES[status - 64]}" "${version:-(none)}" >&2
  sleep 1
done

case $phase in
  FAILED | ERROR) exit 1 ;;
  *) exit 0 ;;
esac
