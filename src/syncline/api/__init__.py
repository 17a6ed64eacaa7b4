"""The HTTP API of `syncline up` (FastAPI): health, readiness and the status document."""
