"""Bots: workers outside Lambda that register, heartbeat and claim typed jobs over HTTP with a lease (issue #14)."""
