"""DynamoDB and SQS plumbing every adapter shares: the item codec, conflict retries, batch writes, SQS."""
