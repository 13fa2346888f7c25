"""Prometheus metrics per connection and stream (served on the app's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECORDS = Counter(
    "spojka_sync_records_total",
    "Records applied to the canonical store",
    ["connection", "stream", "outcome"],
)
ERRORS = Counter(
    "spojka_sync_errors_total", "Records or writes that failed", ["connection", "stream", "kind"]
)
RETRIES = Counter("spojka_sync_retries_total", "Writes scheduled for a retry", ["connection"])
DELIVERIES = Counter(
    "spojka_sync_deliveries_total", "Writes to target systems", ["connection", "outcome"]
)
LAG = Gauge(
    "spojka_sync_lag_seconds", "Now minus the newest applied change", ["connection", "stream"]
)
RATE = Gauge(
    "spojka_sync_records_per_second", "Records/s of the last run", ["connection", "stream"]
)
DLQ_DEPTH = Gauge("spojka_sync_dlq_depth", "Open dead-letter items", ["connection"])
CONFLICTS_OPEN = Gauge("spojka_sync_conflicts_open", "Open conflicts", ["entity"])
WEBHOOKS = Counter(
    "spojka_sync_webhooks_total", "Webhook deliveries received", ["connection", "outcome"]
)
