#!/usr/bin/env bash
# Print one workflow, with its status and every node, as JSON.
#
#   get.sh NAME
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: get.sh NAME"
  echo "environment: TREADLE_SERVER (default 127.0.0.1:7733), TREADLE_MAX_TIME (default 30)"
}

[[ ${1:-} != -h && ${1:-} != --help ]] || { usage; exit 0; }
(($# == 1)) || usage_error "NAME is required"
call GetWorkflow "${TREADLE_MAX_TIME:-30}" <<<"{\"name\": $(json_string "$1")}"
