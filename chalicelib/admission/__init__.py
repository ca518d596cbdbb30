"""Admission: the dispatcher that moves jobs from per-caller backlogs into a bounded in-flight window."""
