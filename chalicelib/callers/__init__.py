"""Each caller, per way in: its weight, limit, backlog, in flight, throughput and queue waits (GET /api/callers)."""
