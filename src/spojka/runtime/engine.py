"""DBOS Transact wired in one place: launch, queues, enqueueing from any process.

The system tables live in the same database as Spojka's own (SQLite file or PostgreSQL
schema ``dbos``). Workflow code anywhere in Spojka uses ``spojka.runtime`` only.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import Any

from dbos import DBOS, DBOSClient, EnqueueOptions
from sqlalchemy.engine import make_url

from spojka.core import tracing
from spojka.core.errors import TransientError
from spojka.core.settings import Settings

# Queue name → limits. Domains add theirs with ``declare_queue`` at import time.
QUEUES: dict[str, dict[str, Any]] = {
    "flows": {"worker_concurrency": 4},
}
# Modules whose import registers workflows; every worker imports all of them.
FLOW_MODULES: list[str] = [
    "spojka.flows.sample",
    "spojka.flows.handoff",
    "spojka.flows.billing",
    "spojka.flows.changes",
    "spojka.flows.timesheets",
    "spojka.flows.payments",
    "spojka.flows.tickets",
    "spojka.sync.flows",
    "spojka.documents.intake_flow",
]

# Schedule name → (workflow taking (scheduled_at, context), cron with seconds). Domains add
# theirs with ``declare_schedule`` at import time; ``launch`` stores them in the runtime.
SCHEDULES: dict[str, tuple[Callable[..., Any], str]] = {}

_client: DBOSClient | None = None
_client_url: str | None = None
_lock = threading.Lock()
_launched = False


def declare_queue(
    name: str,
    *,
    worker_concurrency: int | None = None,
    global_concurrency: int | None = None,
    rate_limit: tuple[int, float] | None = None,
) -> str:
    """Declare a queue with a concurrency limit and a rate limit (count per seconds)."""
    spec: dict[str, Any] = {}
    if worker_concurrency is not None:
        spec["worker_concurrency"] = worker_concurrency
    if global_concurrency is not None:
        spec["global_concurrency"] = global_concurrency
    if rate_limit is not None:
        spec["limiter"] = {"limit": rate_limit[0], "period": rate_limit[1]}
    QUEUES[name] = spec
    return name


def declare_schedule(name: str, workflow: Callable[..., Any], cron: str) -> str:
    """Run ``workflow(scheduled_at, context)`` on a cron (six fields, seconds first).

    DBOS keeps the schedule in its tables; every launched process fires it, and the run of one
    firing has a workflow id made of the schedule name and the time, so it runs once however
    many workers there are.
    """
    SCHEDULES[name] = (workflow, cron)
    return name


def _apply_schedules() -> None:
    """Store the declared schedules unless they are stored already as they are (replacing a
    schedule restarts its timer in every process, so an unchanged one is left alone; one an
    operator paused stays paused)."""
    changed = []
    for name, (workflow, cron) in SCHEDULES.items():
        stored = DBOS.get_schedule(name)
        if stored is None or stored["schedule"] != cron:
            changed.append({"schedule_name": name, "workflow_fn": workflow, "schedule": cron})
    if changed:
        DBOS.apply_schedules(changed)  # type: ignore[arg-type]


def system_database_url(settings: Settings) -> str:
    url = make_url(settings.resolved_database_url)
    if url.drivername.startswith("postgresql"):
        url = url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def migrate_system_tables(settings: Settings) -> None:
    """Create or upgrade the runtime's own tables (so flows can be queued before a worker runs)."""
    try:
        DBOS.migrate(system_database_url(settings))
    except Exception as exc:
        raise TransientError(f"runtime tables could not be created: {exc}") from exc


def import_flows() -> None:
    for module in FLOW_MODULES:
        importlib.import_module(module)


def launch(settings: Settings, *, executor_id: str | None = None) -> None:
    """Start the durable runtime in this process; it recovers this executor's pending work."""
    global _launched
    with _lock:
        if _launched:
            return
        import_flows()
        config: dict[str, Any] = {
            "name": "spojka",
            "system_database_url": system_database_url(settings),
            "application_version": settings.app_version,
            "log_level": "WARNING",
            "executor_id": executor_id or "local",
            "notification_listener_polling_interval_sec": 0.1,
        }
        if settings.otlp_endpoint:
            config["enable_otlp"] = True
            config["otlp_traces_endpoints"] = [settings.otlp_endpoint]
        try:
            DBOS(config=config)  # type: ignore[arg-type]
            DBOS.launch()
        except Exception as exc:
            DBOS.destroy(destroy_registry=False)
            raise TransientError(f"durable runtime could not start: {exc}") from exc
        for name, spec in QUEUES.items():
            DBOS.register_queue(name, polling_interval_sec=0.2, on_conflict="always_update", **spec)
        try:
            _apply_schedules()
        except Exception as exc:
            DBOS.destroy(destroy_registry=False)
            raise TransientError(f"durable runtime could not store its schedules: {exc}") from exc
        _launched = True


def shutdown() -> None:
    global _launched, _client, _client_url
    with _lock:
        if _launched:
            DBOS.destroy(destroy_registry=False)
            _launched = False
        if _client is not None:
            _client.destroy()
            _client, _client_url = None, None


def is_launched() -> bool:
    return _launched


def client(settings: Settings) -> DBOSClient:
    """A client that enqueues, signals and inspects workflows from any process."""
    global _client, _client_url
    url = system_database_url(settings)
    with _lock:
        if _client is None or _client_url != url:
            if _client is not None:
                _client.destroy()
            _client = DBOSClient(system_database_url=url, application_name="spojka")
            _client_url = url
        return _client


def cancel_open_runs(settings: Settings) -> None:
    """Cancel runs still pending or queued (e.g. waiting for a person) so the runtime can stop
    promptly; for demos and test stacks that end, never for a production worker."""
    with contextlib.suppress(Exception):
        dbos = client(settings)
        for status in dbos.list_workflows(status=["PENDING", "ENQUEUED"]):
            dbos.cancel_workflow(status.workflow_id)


def enqueue(
    settings: Settings,
    flow: str,
    *args: Any,
    workflow_id: str | None = None,
    queue: str = "flows",
    deduplication_id: str | None = None,
    **kwargs: Any,
) -> str:
    """Put a flow run on a queue; the same ``workflow_id`` twice runs once. While a run with
    the same ``deduplication_id`` is queued or running on that queue, another is refused
    (``DBOSQueueDeduplicatedError``)."""
    options: EnqueueOptions = {
        "queue_name": queue,
        "workflow_name": flow,
        "app_version": settings.app_version,
    }
    if workflow_id:
        options["workflow_id"] = workflow_id
    if deduplication_id:
        options["deduplication_id"] = deduplication_id
    kwargs.setdefault("_trace_id", tracing.ensure_trace_id())
    handle: Any = client(settings).enqueue(options, *args, **kwargs)
    return handle.get_workflow_id()


def wait_result(settings: Settings, workflow_id: str, timeout: float = 60.0) -> Any:
    """Wait for a workflow's result (polling), raising TimeoutError after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    handle: Any = client(settings).retrieve_workflow(workflow_id)
    while time.monotonic() < deadline:
        status = handle.get_status().status
        if status in ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
            return handle.get_result()
        time.sleep(0.1)
    raise TimeoutError(f"workflow {workflow_id} did not finish within {timeout}s")


def status(settings: Settings, workflow_id: str) -> str:
    return str(client(settings).retrieve_workflow(workflow_id).get_status().status)


def send(settings: Settings, workflow_id: str, message: Any, *, topic: str, key: str) -> None:
    client(settings).send(workflow_id, message, topic, idempotency_key=key)
