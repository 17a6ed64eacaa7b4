"""Telling people: channels, the durable outbox that feeds them, and (on these) alert rules."""
