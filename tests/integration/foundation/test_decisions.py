"""Who may take a decision: the role it names, or admin; answers are kept and audited."""

from __future__ import annotations

import pytest

from spojka.api.auth import APPROVE
from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.core.errors import ConflictError, ForbiddenError, ValidationError
from spojka.governance import audit
from spojka.governance.models import Role
from spojka.runtime import runs


def _ask(app: Spojka, role: str) -> int:
    with transaction(app.sessions) as session:
        request = runs.request_decision(
            session,
            workflow_id="wf-large-invoice",
            topic=f"approve-{role}",
            subject="FP2026-0202",
            summary="326 700 Kč: two approvers, one from finance",
            required_role=role,
        )
        return request.id


def _decide(app: Spojka, decision_id: int, role: str, decision: str = "approve") -> None:
    with transaction(app.sessions) as session:
        runs.record_decision(
            session,
            decision_id=decision_id,
            decision=decision,
            actor=f"{role}-person",
            role=role,
            reason="ok" if decision == "approve" else None,
        )


def test_a_finance_decision_is_taken_by_finance_not_by_an_approver(spojka_app: Spojka) -> None:
    assert Role.finance in APPROVE  # a finance token reaches POST /api/v1/decisions/{id}
    finance = _ask(spojka_app, "finance")
    with pytest.raises(ForbiddenError, match="needs the role 'finance'"):
        _decide(spojka_app, finance, "approver")
    _decide(spojka_app, finance, "finance")
    _decide(spojka_app, finance, "finance")  # the same answer twice is not an error
    with pytest.raises(ConflictError, match="already approved"):
        _decide(spojka_app, finance, "finance", decision="reject")
    with spojka_app.sessions() as session:
        request = runs.get_decision(session, finance)
        assert (request.decision, request.decided_by) == ("approve", "finance-person")
        entries = [e for e in audit.list_entries(session) if e.action == "decision.approve"]
        assert [e.role for e in entries] == ["finance"]


def test_an_approver_decision_is_not_taken_by_finance_but_admin_may(spojka_app: Spojka) -> None:
    request = _ask(spojka_app, "approver")
    with pytest.raises(ForbiddenError):
        _decide(spojka_app, request, "finance")
    with pytest.raises(ValidationError, match="needs a reason"):
        _decide(spojka_app, request, "admin", decision="reject")
    _decide(spojka_app, request, "admin")
