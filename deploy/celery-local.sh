#!/usr/bin/env bash
# Syncline in distributed mode on one machine: one scheduler and two Celery workers sharing
# a broker (Redis or RabbitMQ) and a PostgreSQL metadata store. On several machines, run the
# same `syncline worker` line on each (and a second scheduler if you like: one leads); on a
# machine in region eu, `syncline worker --region eu` takes the runs of eu's connections.
#
#   SYNCLINE_BROKER_URL=redis://127.0.0.1:6379/0 \
#   SYNCLINE_METADATA_URL=postgresql+psycopg://syncline@db/syncline \
#   deploy/celery-local.sh path/to/workspace
#
# Ctrl-C or SIGTERM stops all three: running runs finish first (a second signal: at once).
set -euo pipefail
workspace=${1:-.}
: "${SYNCLINE_BROKER_URL:?set SYNCLINE_BROKER_URL, e.g. redis://127.0.0.1:6379/0}"
: "${SYNCLINE_METADATA_URL:?set SYNCLINE_METADATA_URL to a PostgreSQL store shared by all}"
syncline=${SYNCLINE_BIN:-syncline}
export SYNCLINE_BROKER_URL SYNCLINE_METADATA_URL

pids=()
stop() {
  trap - INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM
# each in a session of its own: a Ctrl-C reaches this script alone, which passes on one SIGTERM
setsid "$syncline" scheduler -w "$workspace" & pids+=($!)
setsid "$syncline" worker -w "$workspace" --workers 1 & pids+=($!)
setsid "$syncline" worker -w "$workspace" --workers 1 & pids+=($!)
wait -n "${pids[@]}" || true  # one of them ended (or a signal came): stop the others
stop
