"""Paced runs: x jobs per y minutes, changed live, emitted by a self-rescheduling tick."""
