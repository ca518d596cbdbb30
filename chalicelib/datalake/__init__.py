"""The datalake: every job result once, as NDJSON objects on S3 partitioned by UTC date, with statistics, an
export per date and the metrics summary (seed 004). Fed by the results table's stream."""
