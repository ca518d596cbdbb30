"""Typed jobs: email, report and notification jobs with priorities, schedules, retries and a browser."""
