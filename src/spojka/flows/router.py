"""API of the quote-to-cash flows.

``POST /api/v1/webhooks/flows/bottlecrm`` is BottleCRM's webhook target: authenticated by its
HMAC signature (not a token), it queues the handoff of a won deal durably and answers 202.
Every other route carries a role guard.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from spojka.api.auth import OPERATE, READ, Principal, get_app, require
from spojka.connectors.bottlecrm.webhooks import verify_delivery
from spojka.core.errors import ConfigError
from spojka.flows import (
    billing,
    changes,
    customer360,
    handoff,
    payments,
    service,
    systems,
    tickets,
    timesheets,
)
from spojka.insights import kpi

router = APIRouter(tags=["flows"])
kpi.register_metrics()


def _secret() -> str:
    cfg = systems.config()
    ref = cfg.systems.bottlecrm
    if ref is None or not ref.webhook_secret:
        raise ConfigError("flows configuration: systems.bottlecrm.webhook_secret is not set")
    return systems.resolve(ref.webhook_secret, "systems.bottlecrm.webhook_secret")


def receive_deal_event(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    event = verify_delivery(_secret(), headers, body)
    if event.event != "deal.won" or not event.record_id:
        return {"event": event.event, "started": None}
    workflow = handoff.start(
        "bottlecrm",
        event.record_id,
        won_at=float(event.signed_at),
        name=str(event.data.get("name") or event.record_id),
    )
    return {"event": event.event, "started": workflow}


@router.post("/webhooks/flows/bottlecrm", status_code=status.HTTP_202_ACCEPTED)
async def bottlecrm_deal_webhook(request: Request) -> dict[str, Any]:
    """A signed BottleCRM delivery; ``deal.won`` queues the handoff (once per deal)."""
    body = await request.body()
    return await run_in_threadpool(receive_deal_event, dict(request.headers), body)


@router.post("/flows/handoffs/poll-tryton")
def poll_tryton(
    request: Request, since_hours: float | None = None, principal: Principal = require(OPERATE)
) -> dict[str, Any]:
    """Queue handoffs for won Tryton opportunities (Tryton has no webhooks)."""
    get_app(request)
    return {"started": handoff.poll_tryton_won(since_hours)}


@router.post("/flows/billing/poll")
def poll_milestones(request: Request, principal: Principal = require(OPERATE)) -> dict[str, Any]:
    """Queue billing for milestones closed in Redmine (Redmine has no webhooks)."""
    get_app(request)
    return {"started": billing.poll_milestones()}


@router.get("/capacity")
def capacity(
    request: Request, weeks: int = 12, principal: Principal = require(READ)
) -> dict[str, Any]:
    """Demand (weighted pipeline + booked projects) vs. capacity per role, next ``weeks``."""
    get_app(request)
    return service.capacity_forecast(weeks=max(1, min(weeks, 52)))


@router.get("/kpi")
def kpis(request: Request, principal: Principal = require(READ)) -> list[dict[str, Any]]:
    """Quote-to-cash KPIs from the run records."""
    get_app(request)
    return service.kpis()


@router.post("/flows/timesheets/poll")
def poll_timesheets(request: Request, principal: Principal = require(OPERATE)) -> dict[str, Any]:
    """Queue time & material billing of last month's unbilled Redmine time entries."""
    get_app(request)
    return {"started": timesheets.poll_timesheets()}


@router.post("/flows/payments/poll")
def poll_payments(request: Request, principal: Principal = require(OPERATE)) -> dict[str, Any]:
    """Queue the payment state of paid or partly paid Tryton invoices onto deal and project."""
    get_app(request)
    return {"started": payments.poll_payments()}


@router.post("/flows/tickets/poll")
def poll_tickets(request: Request, principal: Principal = require(OPERATE)) -> dict[str, Any]:
    """Queue CRM updates for Redmine support tickets whose status or SLA risk changed."""
    get_app(request)
    return {"started": tickets.poll_tickets()}


@router.get("/accounts/{account_id}/360", tags=["accounts"])
def account_360(
    account_id: str, request: Request, principal: Principal = require(READ)
) -> customer360.Customer360:
    """One customer across CRM, PM and ERP: open deals, projects with budget burn, open
    tickets with SLA risk, invoices with amounts due and overdue, DSO, last activities.
    ``account_id`` is Spojka's canonical id or the customer's IČO; a system that cannot be
    reached is listed under ``systems`` as unavailable."""
    get_app(request)
    return customer360.build(account_id)


@router.post("/flows/changes/poll")
def poll_changes(request: Request, principal: Principal = require(OPERATE)) -> dict[str, Any]:
    """Queue runs for change requests decided in Redmine."""
    get_app(request)
    return {"started": changes.poll_change_requests()}
