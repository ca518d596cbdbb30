"""Observability: JSON logs whose lines carry a job's correlation id, and metrics in CloudWatch's embedded metric
format."""
