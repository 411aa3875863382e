# shellcheck shell=bash
# Shared by the scripts in clients/grpcurl/ (sourced, not run). They call
# treadle's AdmissionService with grpcurl, through server reflection only.
#
# Environment:
#   TREADLE_SERVER     host:port of the treadle server (default 127.0.0.1:7733)
#   TREADLE_MAX_TIME   deadline of one call in seconds (default 30; watch.sh: per connection, default 3600)
#   GRPCURL            the grpcurl command (default: grpcurl on PATH)

TREADLE_SERVER="${TREADLE_SERVER:-127.0.0.1:7733}"
GRPCURL="${GRPCURL:-grpcurl}"
ADMISSION=treadle.admission.v1.AdmissionService
# grpcurl exits with 64 + the gRPC status code when a call fails; these are the codes' names.
STATUS_NAMES=(OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS PERMISSION_DENIED
  RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS
  UNAUTHENTICATED)

die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 2
}

usage_error() {
  printf '%s: %s\n' "${0##*/}" "$1" >&2
  usage >&2
  exit 2
}

# json_string TEXT: TEXT as a JSON string literal. YAML and JSON allow no control
# characters besides tab, LF and CR, so escaping those, '\' and '"' is enough.
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# json_unescape TEXT: the string a JSON string literal's contents (without quotes) stand for.
# printf %b reads JSON's remaining escapes (\\ \n \r \t \b \f \uXXXX) the same way JSON does.
json_unescape() {
  local s=$1
  s=${s//\\\"/\"}
  s=${s//\\\//\/}
  printf '%b' "$s"
}

# json_map PAIR...: a JSON object from KEY=VALUE pairs.
json_map() {
  local pair sep="" out="{"
  for pair in "$@"; do
    [[ $pair == *=* ]] || die "expected KEY=VALUE, got '$pair'"
    out+="$sep$(json_string "${pair%%=*}"): $(json_string "${pair#*=}")"
    sep=", "
  done
  printf '%s}' "$out"
}

# call METHOD MAX_TIME: send the JSON request on stdin to AdmissionService/METHOD, print the response.
# A failed call prints its google.rpc.Status (code, message, details) on stderr, then the code's name,
# and returns grpcurl's exit code.
call() {
  local method=$1 max_time=$2 status=0
  "$GRPCURL" -plaintext -format-error -max-time "$max_time" -d @ "$TREADLE_SERVER" "$ADMISSION/$method" || status=$?
  if ((status > 64 && status - 64 < ${#STATUS_NAMES[@]})); then
    printf '\n%s: %s failed: %s\n' "${0##*/}" "$method" "${STATUS_NAMES[status - 64]}" >&2
  fi
  return "$status"
}

# first_at_indent INDENT KEY: the value of the first `"KEY": "value"` line indented by INDENT spaces
# in grpcurl's JSON on stdin. grpcurl prints two spaces per level, one field per line.
first_at_indent() {
  local indent=$1 key=$2 line pattern
  pattern="^ {$indent}\"$key\": \"(.*)\",?$"
  while IFS= read -r line; do
    if [[ $line =~ $pattern ]]; then
      json_unescape "${BASH_REMATCH[1]}"
      printf '\n'
      return 0
    fi
  done
  return 1
}

# every_at_indent INDENT KEY: like first_at_indent, for every matching line.
every_at_indent() {
  local indent=$1 key=$2 line pattern
  pattern="^ {$indent}\"$key\": \"(.*)\",?$"
  while IFS= read -r line; do
    if [[ $line =~ $pattern ]]; then
      json_unescape "${BASH_REMATCH[1]}"
      printf '\n'
    fi
  done
}

# workflow_phase WORD: the WorkflowPhase enum name for Running, running or WORKFLOW_PHASE_RUNNING.
workflow_phase() {
  local word=${1^^}
  word=${word#WORKFLOW_PHASE_}
  case $word in
    PENDING | RUNNING | SUCCEEDED | FAILED | ERROR) printf 'WORKFLOW_PHASE_%s' "$word" ;;
    *) die "unknown phase '$1' (Pending, Running, Succeeded, Failed or Error)" ;;
  esac
}
