#!/usr/bin/env bash
# Run one command against LocalStack in host mode, and stop LocalStack afterwards,
# whether the command passed, failed or was interrupted.
#
#   infra/localstack/with-localstack.sh .venv/bin/python -m pytest -m "integration or runtime"
#
# The command sees only configuration: AWS_ENDPOINT_URL and dummy credentials
# and region, exactly what a user would export. Its exit status is returned.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${PACER_LOCALSTACK_PORT:-4566}"

(($# > 0)) || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 64; }

stop_localstack() { bash "$HERE/hostmode.sh" stop || true; }
trap stop_localstack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$HERE/hostmode.sh" start

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_DEFAULT_REGION="us-east-1"
export AWS_ACCESS_KEY_ID="test"
export AWS_SECRET_ACCESS_KEY="test"
unset AWS_PROFILE AWS_SESSION_TOKEN

status=0
"$@" || status=$?
exit "$status"
