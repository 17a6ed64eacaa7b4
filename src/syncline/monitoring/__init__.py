"""Watching pipelines: the status document today; events, failure groups, metrics to come."""
