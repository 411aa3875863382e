#!/usr/bin/env bash
# Delete a workflow: stop it if it runs, and forget it with its recorded outputs.
#
#   delete.sh [--request-id ID] NAME
#
# With --request-id, retrying a delete that already went through succeeds quietly.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: delete.sh [--request-id ID] NAME"
  echo "environment: TREADLE_SERVER (default 127.0.0.1:7733), TREADLE_MAX_TIME (default 30)"
}

request_id=""
name=""
while (($#)); do
  case $1 in
    --request-id) request_id=${2:?$1 needs an id}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option $1" ;;
    *) [[ -z $name ]] || usage_error "one NAME only"; name=$1; shift ;;
  esac
done
[[ -n $name ]] || usage_error "NAME is required"

request="{\"name\": $(json_string "$name")"
[[ -z $request_id ]] || request+=", \"requestId\": $(json_string "$request_id")"
call DeleteWorkflow "${TREADLE_MAX_TIME:-30}" <<<"$request}" >/dev/null
printf 'workflow %s deleted\n' "$name"
