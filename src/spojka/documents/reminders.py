"""Reminders and escalation of supplier-invoice decisions nobody has answered.

The AP flow waits durably for a person (``await_decision``). With a reminder policy in
``documents-ap.yaml`` the wait is cut in three::

    reminders:
      connection: mail            # a mail connection (``spojka sync connect … --kind mail``)
      remind_after: 86400         # seconds without a decision → a reminder to the role
      escalate_after: 172800      # seconds (from the request) → handed to the next level
      recipients: {approver: [petra@firma.cz], finance: [financni@firma.cz]}
      escalate_to: {approver: finance}   # the next level per role (default: → finance)

A reminder mails the recipients of the role the decision needs; an escalation moves the
decision to the next role (so that role may decide it) and mails that role's recipients.
Both are audited with the decision they concern, also when the mail could not be sent.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from dbos import DBOS

from spojka.bootstrap import current
from spojka.core.db import transaction
from spojka.core.errors import SpojkaError, ValidationError
from spojka.core.logging import get_logger
from spojka.governance import audit
from spojka.runtime import await_decision, step
from spojka.runtime.models import Decision

log = get_logger("spojka.documents.reminders")
ACTOR = "spojka"


@dataclass(frozen=True)
class ReminderPolicy:
    remind_after: float
    escalate_after: float
    connection: str | None = None
    recipients: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    escalate_to: Mapping[str, str] = field(default_factory=dict)
    finance_role: str = "finance"

    def __post_init__(self) -> None:
        if self.remind_after <= 0:
            raise ValidationError("reminders: remind_after must be a positive number of seconds")
        if self.escalate_after <= self.remind_after:
            raise ValidationError("reminders: escalate_after must be later than remind_after")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, finance_role: str) -> ReminderPolicy:
        allowed = {"connection", "remind_after", "escalate_after", "recipients", "escalate_to"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValidationError(
                f"reminders: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})"
            )
        try:
            remind = float(raw.get("remind_after", 86400))
            escalate = float(raw.get("escalate_after", 2 * remind))
        except (TypeError, ValueError):
            raise ValidationError("reminders: the deadlines must be numbers of seconds") from None
        recipients: dict[str, tuple[str, ...]] = {}
        for role, who in dict(raw.get("recipients") or {}).items():
            addresses = [who] if isinstance(who, str) else list(who or [])
            if not all(isinstance(a, str) and "@" in a for a in addresses):
                raise ValidationError(f"reminders: recipients.{role} must be e-mail addresses")
            recipients[str(role)] = tuple(addresses)
        return cls(
            remind_after=remind,
            escalate_after=escalate,
            connection=str(raw["connection"]) if raw.get("connection") else None,
            recipients=recipients,
            escalate_to={str(k): str(v) for k, v in dict(raw.get("escalate_to") or {}).items()},
            finance_role=finance_role,
        )

    def next_role(self, role: str) -> str:
        """Who a decision goes to when ``role`` has not answered (finance by default)."""
        return self.escalate_to.get(role) or (
            self.finance_role if role != self.finance_role else "admin"
        )

    def as_step_value(self) -> dict[str, Any]:
        return {
            "remind_after": self.remind_after,
            "escalate_after": self.escalate_after,
            "connection": self.connection,
            "recipients": {k: list(v) for k, v in self.recipients.items()},
            "escalate_to": dict(self.escalate_to),
            "finance_role": self.finance_role,
        }

    @classmethod
    def from_step_value(cls, value: Mapping[str, Any]) -> ReminderPolicy:
        return cls(
            remind_after=float(value["remind_after"]),
            escalate_after=float(value["escalate_after"]),
            connection=value.get("connection"),
            recipients={k: tuple(v) for k, v in dict(value.get("recipients") or {}).items()},
            escalate_to=dict(value.get("escalate_to") or {}),
            finance_role=str(value.get("finance_role") or "finance"),
        )


def _decision(session: Any, workflow_id: str, topic: str) -> Decision | None:
    found: Decision | None = session.scalar(
        sa.select(Decision).where(Decision.workflow_id == workflow_id, Decision.topic == topic)
    )
    return found


def _send(
    policy: ReminderPolicy, *, key: str, to: list[str], subject: str, body: str
) -> tuple[bool, str | None]:
    """Send one notification through the mail connection; (sent, error)."""
    if not to:
        return False, "no recipients configured for this role"
    if not policy.connection:
        return False, "no mail connection configured (reminders.connection)"
    from spojka.sync.engine import SyncEngine

    engine = SyncEngine(current().engine)
    try:
        runtime = engine.runtime(policy.connection)
        stream = next(s for s in runtime.connector.streams() if s.name == "notifications")
        runtime.connector.write(
            stream,
            {"to": to, "subject": subject, "body": body},
            external_id=None,
            idempotency_key=key,
        )
        return True, None
    except (SpojkaError, StopIteration, OSError) as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        log.warning("documents.reminder_mail_failed", key=key, error=message)
        return False, message
    finally:
        engine.close()


@step(name="ap.remind")
def remind(workflow_id: str, topic: str, policy_value: dict[str, Any]) -> dict[str, Any]:
    """Mail the role the decision waits for, and audit it."""
    policy = ReminderPolicy.from_step_value(policy_value)
    with current().sessions() as session:
        request = _decision(session, workflow_id, topic)
        if request is None or request.decided_at is not None:
            return {"sent": False, "skipped": "decided"}
        decision_id, role = request.id, request.required_role
        subject, summary = request.subject, request.summary
    to = list(policy.recipients.get(role, ()))
    sent, error = _send(
        policy,
        key=f"ap-reminder:{decision_id}",
        to=to,
        subject=f"Připomínka / reminder: {subject}",
        body=f"Rozhodnutí {decision_id} čeká na roli {role} / decision {decision_id} waits "
        f"for the role {role}.\n\n{summary}\n\n"
        f"spojka decisions approve {decision_id}   |   spojka decisions reject {decision_id}",
    )
    with transaction(current().sessions) as session:
        audit.record(
            session,
            actor=ACTOR,
            action="decision.reminded",
            object_type="decision_request",
            object_id=str(decision_id),
            after={"role": role, "mailed_to": to if sent else [], "mail_error": error},
            reason=f"no decision within {policy.remind_after:g} s",
        )
    return {"decision": decision_id, "role": role, "sent": sent, "error": error}


@step(name="ap.escalate")
def escalate(workflow_id: str, topic: str, policy_value: dict[str, Any]) -> dict[str, Any]:
    """Hand the decision to the next level (it may decide it from now on), mail and audit."""
    policy = ReminderPolicy.from_step_value(policy_value)
    with transaction(current().sessions) as session:
        request = _decision(session, workflow_id, topic)
        if request is None or request.decided_at is not None:
            return {"escalated": False, "skipped": "decided"}
        before = request.required_role
        target = policy.next_role(before)
        request.required_role = target
        decision_id, subject, summary = request.id, request.subject, request.summary
        audit.record(
            session,
            actor=ACTOR,
            action="decision.escalated",
            object_type="decision_request",
            object_id=str(decision_id),
            before={"required_role": before},
            after={"required_role": target, "subject": subject},
            reason=f"no decision within {policy.escalate_after:g} s",
        )
    to = list(policy.recipients.get(target, ()))
    sent, error = _send(
        policy,
        key=f"ap-escalation:{decision_id}",
        to=to,
        subject=f"Eskalace / escalated: {subject}",
        body=f"Rozhodnutí {decision_id} nikdo ({before}) nerozhodl; předáno roli {target}. / "
        f"Nobody ({before}) decided {decision_id}; it is now yours ({target}).\n\n{summary}",
    )
    if not sent:
        with transaction(current().sessions) as session:
            audit.record(
                session,
                actor=ACTOR,
                action="decision.escalation_mail_failed",
                object_type="decision_request",
                object_id=str(decision_id),
                after={"role": target, "mail_error": error},
            )
    return {"decision": decision_id, "from": before, "to": target, "sent": sent, "error": error}


def wait_for_person(
    *,
    subject: str,
    summary: str,
    topic: str,
    required_role: str,
    policy: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """``await_decision`` with a reminder and an escalation when a policy is configured.

    Called from the workflow: the waits are durable, so a restart resumes the right stage.
    """
    wait = functools.partial(
        await_decision, subject=subject, summary=summary, topic=topic, required_role=required_role
    )
    if policy is not None:
        # Wait, then remind; wait until the escalation, then escalate; then the plain wait.
        first = float(policy["remind_after"])
        stages = ((first, remind), (float(policy["escalate_after"]) - first, escalate))
        for timeout, nudge in stages:
            answer = wait(timeout_seconds=timeout)
            if answer is not None:
                return answer
            nudge(DBOS.workflow_id or "", topic, policy)
    return wait()
