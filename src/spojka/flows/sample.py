"""The frame's sample flow: a new customer is checked, approved when over the limit, recorded.

It shows the pieces every later flow uses: durable steps, a run record, a human decision
by the limits matrix, and the audit chain. ``spojka.probe`` is a three-step flow used by
the crash-recovery test and the durability benchmark.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from stdnum.cz import dic as cz_dic

from spojka.bootstrap import current
from spojka.core.db import transaction
from spojka.governance import audit
from spojka.runtime import FlowResult, Outcome, await_decision, flow, step

CREDIT_LIMIT_NEEDS_APPROVAL = Decimal("200000")


def check_customer(customer: dict[str, Any]) -> list[str]:
    """Named problems with a new customer record (pure)."""
    problems = []
    if not str(customer.get("name", "")).strip():
        problems.append("název (name) chybí / is missing")
    ico = str(customer.get("ico", "")).strip()
    if not (len(ico) == 8 and ico.isdigit() and cz_dic.is_valid(ico)):
        problems.append(f"IČO {ico!r} nemá platnou kontrolní číslici / has a wrong check digit")
    try:
        limit = Decimal(str(customer.get("credit_limit", "0")))
        if limit < 0:
            problems.append("credit_limit must not be negative")
    except ArithmeticError:
        problems.append("credit_limit is not a number")
    return problems


@step(name="sample.check")
def _check(customer: dict[str, Any]) -> list[str]:
    return check_customer(customer)


@step(name="sample.record")
def _record(customer: dict[str, Any], outcome: str, actor: str) -> None:
    with transaction(current().sessions) as session:
        audit.record(
            session,
            actor=actor,
            action=f"customer.{outcome}",
            object_type="account",
            object_id=str(customer.get("ico")),
            after=customer,
        )


@flow("demo.customer_onboarding", subject_arg="subject")
def customer_onboarding(customer: dict[str, Any], subject: str = "") -> FlowResult:
    problems = _check(customer)
    if problems:
        _record(customer, "rejected", "spojka")
        return FlowResult(Outcome.rejected, detail={"problems": problems})
    if Decimal(str(customer.get("credit_limit", "0"))) <= CREDIT_LIMIT_NEEDS_APPROVAL:
        _record(customer, "onboarded", "spojka")
        return FlowResult(Outcome.automated, detail={"problems": []})
    answer = await_decision(
        subject=subject or str(customer.get("ico")),
        summary=f"Úvěrový limit {customer.get('credit_limit')} Kč pro {customer.get('name')} "
        f"přesahuje {CREDIT_LIMIT_NEEDS_APPROVAL} Kč",
    )
    if answer is None or answer.get("decision") != "approve":
        _record(customer, "rejected", (answer or {}).get("actor", "timeout"))
        return FlowResult(Outcome.rejected, detail={"reason": (answer or {}).get("reason")})
    _record(customer, "onboarded", answer.get("actor", "?"))
    return FlowResult(Outcome.approved, detail={"approved_by": answer.get("actor")})


def _mark(effects: str, label: str) -> None:
    if effects:
        with Path(effects).open("a") as fh:
            fh.write(label + "\n")


@step(name="probe.one")
def _probe_one(effects: str) -> str:
    _mark(effects, "one")
    return "one"


@step(name="probe.two")
def _probe_two(effects: str, pause: float) -> str:
    # Only the first attempt pauses, so a test can kill the worker there and watch the
    # recovered attempt finish without waiting again.
    first = (
        not (effects and "two-start" in Path(effects).read_text())
        if effects and Path(effects).exists()
        else True
    )
    _mark(effects, "two-start")
    if first:
        time.sleep(pause)
    _mark(effects, "two")
    return "two"


@step(name="probe.three")
def _probe_three(effects: str) -> str:
    _mark(effects, "three")
    return "three"


@flow("spojka.probe")
def probe(effects: str = "", pause: float = 0.0) -> list[str]:
    """Three steps; the middle one can pause so a test can kill the worker inside it."""
    return [_probe_one(effects), _probe_two(effects, pause), _probe_three(effects)]
