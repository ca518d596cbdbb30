"""Workers visible: heartbeats, the fleet view, the desired concurrency."""
