#!/bin/sh
# The streaming API function's handler: the Lambda Web Adapter's wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# execs "$LAMBDA_TASK_ROOT/<handler>", i.e. this script, and forwards each request to the server it starts.
# The dependency layer (/opt/python) and the code (the task root) are on the path as in the Python runtime.
cd "${LAMBDA_TASK_ROOT:-$(dirname "$0")/../..}" || exit 1
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT:-.}${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m functions.api.stream
