#!/usr/bin/env bash
# Print the saved logs of a workflow's steps, one "NODE: line" per log line.
#
#   logs.sh [-o text|json] NAME [NODE]
#
# NODE (an id, name or display name) limits the output to that node and the
# steps under it. -o json prints WorkflowLogs' messages as grpcurl shows them.
set -euo pipefail
shopt -s lastpipe
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: logs.sh [-o text|json] NAME [NODE]"
  echo "environment: TREADLE_SERVER (default 127.0.0.1:7733), TREADLE_MAX_TIME (default 300)"
}

output=text
positional=()
while (($#)); do
  case $1 in
    -o | --output) output=${2:?$1 needs text or json}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option $1" ;;
    *) positional+=("$1"); shift ;;
  esac
done
((${#positional[@]} == 1 || ${#positional[@]} == 2)) || usage_error "NAME is required, NODE is optional"
[[ $output == text || $output == json ]] || usage_error "-o takes text or json"

request="{\"name\": $(json_string "${positional[0]}"), \"node\": $(json_string "${positional[1]:-}")}"

# One message per log line: node_name and content (omitted when the line is empty, as proto3 JSON does).
as_text() {
  local line node="" content=""
  local node_line='^  "node_name": "(.*)",?$' content_line='^  "content": "(.*)",?$'
  while IFS= read -r line; do
    if [[ $line =~ $node_line ]]; then
      node=$(json_unescape "${BASH_REMATCH[1]}")
    elif [[ $line =~ $content_line ]]; then
      content=$(json_unescape "${BASH_REMATCH[1]}")
    elif [[ $line == "}" ]]; then
      printf '%s: %s\n' "$node" "$content"
      node="" content=""
    fi
  done
}

if [[ $output == json ]]; then
  call WorkflowLogs "${TREADLE_MAX_TIME:-300}" <<<"$request"
else
  call WorkflowLogs "${TREADLE_MAX_TIME:-300}" <<<"$request" | as_text
fi
