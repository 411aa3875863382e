#!/usr/bin/env bash
# Submit an Argo Workflow manifest (YAML or JSON) to treadle.
#
#   submit.sh [options] FILE         FILE may be - for standard input
#
# The manifest's text travels as SubmitWorkflowRequest.manifest; the server
# parses and validates it. Prints the SubmitWorkflow response (JSON), or with
# -o name only the new workflow's name. An invalid manifest exits 67
# (64 + INVALID_ARGUMENT) with the google.rpc.BadRequest on stderr, naming
# each bad field.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
usage: submit.sh [options] FILE
  -p, --parameter NAME=VALUE   override a workflow parameter (repeatable)
  -l, --label KEY=VALUE        add a label (repeatable)
      --entrypoint NAME        run this template instead of spec.entrypoint
      --generate-name PREFIX   name the workflow PREFIX plus five random characters
      --request-id ID          retrying with the same ID creates the workflow once
  -o, --output json|name       print the response (default) or the workflow's name
environment: TREADLE_SERVER (default 127.0.0.1:7733), TREADLE_MAX_TIME (default 30)
USAGE
}

parameters=()
labels=()
entrypoint=""
generate_name=""
request_id=""
output=json
file=""
while (($#)); do
  case $1 in
    -p | --parameter) parameters+=("${2:?$1 needs NAME=VALUE}"); shift 2 ;;
    -l | --label) labels+=("${2:?$1 needs KEY=VALUE}"); shift 2 ;;
    --entrypoint) entrypoint=${2:?$1 needs a template name}; shift 2 ;;
    --generate-name) generate_name=${2:?$1 needs a prefix}; shift 2 ;;
    --request-id) request_id=${2:?$1 needs an id}; shift 2 ;;
    -o | --output) output=${2:?$1 needs json or name}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -) file=-; shift ;;
    -*) usage_error "unknown option $1" ;;
    *) [[ -z $file ]] || usage_error "one FILE only"; file=$1; shift ;;
  esac
done
[[ -n $file ]] || usage_error "FILE is required"
[[ $output == json || $output == name ]] || usage_error "-o takes json or name"

if [[ $file == - ]]; then
  manifest=$(cat)
else
  [[ -r $file ]] || die "cannot read $file"
  manifest=$(<"$file")
fi

request="{\"manifest\": $(json_string "$manifest")"
((${#parameters[@]} == 0)) || request+=", \"parameters\": $(json_map "${parameters[@]}")"
((${#labels[@]} == 0)) || request+=", \"labels\": $(json_map "${labels[@]}")"
[[ -z $entrypoint ]] || request+=", \"entrypoint\": $(json_string "$entrypoint")"
[[ -z $generate_name ]] || request+=", \"generateName\": $(json_string "$generate_name")"
[[ -z $request_id ]] || request+=", \"requestId\": $(json_string "$request_id")"
request+="}"

response=$(call SubmitWorkflow "${TREADLE_MAX_TIME:-30}" <<<"$request")
if [[ $output == name ]]; then
  # workflow.metadata.name: the first "name" three levels deep (fields print in field-number order).
  first_at_indent 6 name <<<"$response"
else
  printf '%s\n' "$response"
fi
