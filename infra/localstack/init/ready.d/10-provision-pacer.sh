#!/bin/bash
# LocalStack READY hook: create Pacer's tables and queues.
#
# It runs the same provisioning as `make up` (infra/provision.py, which reads
# chalicelib/resources.py), so the declaration stays the one source.
# infra/docker-compose.yml mounts chalicelib/ and infra/ at /opt/pacer;
# LocalStack runs this once it is ready to serve requests.
set -euo pipefail

src="${PACER_SRC:-/opt/pacer}"
# LocalStack's image runs from its own virtual environment, which has boto3.
python="/opt/code/localstack/.venv/bin/python"
[[ -x "$python" ]] || python="$(command -v python3)"

cd "$src"
AWS_ENDPOINT_URL="http://127.0.0.1:${PACER_LOCALSTACK_PORT:-4566}" \
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
AWS_ACCESS_KEY_ID="test" \
AWS_SECRET_ACCESS_KEY="test" \
PYTHONPATH="$src" \
    "$python" -m infra.provision
