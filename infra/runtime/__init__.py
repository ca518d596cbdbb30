"""The local serverless runtime: every event source of a Chalice app except HTTP.

`chalice local` serves routes only. This package runs the rest of what a
Chalice app declares in `app.event_sources`, with AWS Lambda's semantics:

- `@app.on_sqs_message` sources get worker processes that poll their queue
  like a Lambda event source mapping with ReportBatchItemFailures
  (`infra.runtime.worker`);
- `@app.schedule` sources get one scheduler process (`infra.runtime.scheduler`);
- a supervisor (`infra.runtime.supervisor`) starts those children, restarts
  any that exits, and stops them all on SIGINT or SIGTERM.

    python -m infra.runtime --project-dir DIR --stage STAGE --workers N [--function-timeout SECONDS]

It works for any Chalice project directory. The AWS endpoint comes from the
environment alone (`AWS_ENDPOINT_URL` and friends), so the same runtime drives
moto, LocalStack or a real account. docs/RUNTIME.md describes the behaviour
and where it deliberately differs from AWS.
"""
