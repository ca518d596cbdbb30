"""What every feature shares: errors, the job envelope and outcome, times, validation, the queue port."""
