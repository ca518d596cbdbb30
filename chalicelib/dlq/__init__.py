"""The dead-letter queue: what is in it, why, and moving it back."""
