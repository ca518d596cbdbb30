"""The one job worker: runs each job of a message, records outcomes exactly once, retries failures."""
