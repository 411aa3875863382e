#!/usr/bin/env bash
# List workflows, newest first, optionally filtered.
#
#   list.sh [options]
#
# Prints each ListWorkflows response (JSON), or with -o name one workflow name
# per line. Without --all it prints one page; its next_page_token (JSON output)
# goes to --page-token for the next one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
usage: list.sh [options]
  -l, --selector SELECTOR   Kubernetes label selector, e.g. 'team=a,env in (dev,test),!canary'
      --phase PHASE         Pending, Running, Succeeded, Failed or Error (repeatable: any of them)
      --prefix PREFIX       only names that start with PREFIX
      --page-size N         workflows per page (server default 100, at most 500)
      --page-token TOKEN    continue from a previous page
      --all                 follow next_page_token until the last page
  -o, --output json|name    print the responses (default) or the workflows' names
environment: TREADLE_SERVER (default 127.0.0.1:7733), TREADLE_MAX_TIME (default 30)
USAGE
}

selector=""
phases=()
prefix=""
page_size=""
token=""
all=false
output=json
while (($#)); do
  case $1 in
    -l | --selector) selector=${2?$1 needs a selector}; shift 2 ;;
    --phase) phases+=("\"$(workflow_phase "${2:?$1 needs a phase}")\""); shift 2 ;;
    --prefix) prefix=${2?$1 needs a prefix}; shift 2 ;;
    --page-size) page_size=${2:?$1 needs a number}; shift 2 ;;
    --page-token) token=${2:?$1 needs a token}; shift 2 ;;
    --all) all=true; shift ;;
    -o | --output) output=${2:?$1 needs json or name}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
[[ $output == json || $output == name ]] || usage_error "-o takes json or name"
[[ -z $page_size || $page_size =~ ^[0-9]+$ ]] || usage_error "--page-size takes a number"

filters=""
[[ -z $selector ]] || filters+=", \"labelSelector\": $(json_string "$selector")"
((${#phases[@]} == 0)) || filters+=", \"phases\": [$(IFS=,; echo "${phases[*]}")]"
[[ -z $prefix ]] || filters+=", \"namePrefix\": $(json_string "$prefix")"
[[ -z $page_size ]] || filters+=", \"pageSize\": $page_size"

while true; do
  response=$(call ListWorkflows "${TREADLE_MAX_TIME:-30}" <<<"{\"pageToken\": $(json_string "$token")$filters}")
  if [[ $output == name ]]; then
    # workflows[].metadata.name: "name" four levels deep.
    every_at_indent 8 name <<<"$response"
  else
    printf '%s\n' "$response"
  fi
  token=$(first_at_indent 2 next_page_token <<<"$response") || token=""
  [[ $all == true && -n $token ]] || break
done
