"""``documents.ap_intake``: one durable accounts-payable run per stored supplier invoice.

read → checks → match against the Tryton purchases (2-way, 3-way for goods) → exception
(a person releases or rejects when a check failed or the match is not clean) → approval by the
matrix (0, 1 or 2 decisions in sequence, the second from finance) → post the supplier invoice
in Tryton (found by its marker on a retry, never created twice) → run record outcome
automated / approved / rejected.

The workflow id comes from the document's content hash, so the same file queued twice runs
once. Limits and tolerances come from ``<data_dir>/documents-ap.yaml`` (optional)::

    approval: {auto_limit: 20000, single_limit: 200000, finance_role: finance}
    tolerances: {default: {price_pct: 1, quantity: 0, total_amount: 1},
                 suppliers: {"25596641": {price_pct: 3}}}
    three_way: true
    reminders: {connection: mail, remind_after: 86400, escalate_after: 172800,
                recipients: {approver: [petra@firma.cz], finance: [uctarna@firma.cz]}}
    model: {url: http://127.0.0.1:8080/v1, model: qwen2.5-7b-instruct}

``reminders`` (see ``documents.reminders``) cuts every wait for a person into a reminder and
an escalation; ``model`` (see ``documents.model_assist``) asks a language model for fields the
rules left empty or unsure. After a released exception the run reads the document again, so a
person's correction (``spojka documents correct``) is what gets posted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from spojka.bootstrap import current
from spojka.core.db import transaction
from spojka.core.errors import ConfigError, NotFoundError, SpojkaError
from spojka.core.settings import Settings
from spojka.documents import approval, matching, model_assist, reminders
from spojka.documents.models import DocumentVersion, StoredDocument
from spojka.documents.posting import TrytonPayables
from spojka.documents.service import check_invoice, invoice_from_output
from spojka.flows import systems
from spojka.flows.handoff import Envelope, _audit, guarded, retrying
from spojka.runtime import FlowResult, Outcome, flow, step

FLOW = "documents.ap_intake"
CONFIG_FILE = "documents-ap.yaml"
MAX_SAME_PERSON_RETRIES = 3


def workflow_id(content_hash: str) -> str:
    return f"ap:{content_hash}"


@dataclass(frozen=True)
class ApConfig:
    matrix: approval.ApprovalMatrix = field(default_factory=approval.ApprovalMatrix)
    tolerances: matching.Tolerances = field(default_factory=matching.Tolerances)
    three_way: bool = True
    reminders: reminders.ReminderPolicy | None = None
    model: model_assist.ModelEndpoint | None = None


def load_config(data_dir: Path) -> ApConfig:
    path = data_dir / CONFIG_FILE
    if not path.exists():
        return ApConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top")
    unknown = set(raw) - {"approval", "tolerances", "three_way", "reminders", "model"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
    try:
        matrix = approval.ApprovalMatrix.from_mapping(raw.get("approval") or {})
        return ApConfig(
            matrix=matrix,
            tolerances=matching.Tolerances.from_mapping(raw.get("tolerances") or {}),
            three_way=bool(raw.get("three_way", True)),
            reminders=reminders.ReminderPolicy.from_mapping(
                raw["reminders"], finance_role=matrix.finance_role
            )
            if raw.get("reminders")
            else None,
            model=model_assist.ModelEndpoint.from_mapping(raw["model"])
            if raw.get("model")
            else None,
        )
    except SpojkaError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


def _payables() -> TrytonPayables:
    return TrytonPayables(systems.tryton(systems.config()))


def _set_status(document_id: int, status: str) -> None:
    with transaction(current().sessions) as session:
        doc = session.get(StoredDocument, document_id)
        if doc is not None:
            doc.status = status


# -- steps --------------------------------------------------------------------------------


@step(name="ap.read")
def read(document_id: int) -> dict[str, Any]:
    """The document's current version (a person's correction wins over the first reading)."""
    with current().sessions() as session:
        doc = session.get(StoredDocument, document_id)
        if doc is None:
            raise NotFoundError(f"document {document_id} not found")
        version = session.scalars(
            sa.select(DocumentVersion)
            .where(DocumentVersion.document_id == document_id)
            .order_by(DocumentVersion.version.desc())
            .limit(1)
        ).one()
        return {
            "hash": doc.content_hash,
            "filename": doc.filename,
            "version": version.version,
            "invoice": dict(version.invoice),
        }


@step(name="ap.model")
def assist(document_id: int) -> dict[str, Any] | None:
    """Ask the configured model for unsure fields (None when no model is configured)."""
    endpoint = load_config(current().settings.data_dir).model
    if endpoint is None:
        return None
    return model_assist.assist_document(
        current(), document_id=document_id, endpoint=endpoint
    ).as_dict()


@step(name="ap.reminder_policy")
def reminder_policy() -> dict[str, Any] | None:
    policy = load_config(current().settings.data_dir).reminders
    return policy.as_step_value() if policy else None


@step(name="ap.check")
def check(document_id: int, output: dict[str, Any]) -> list[dict[str, Any]]:
    invoice = invoice_from_output(output)
    with current().sessions() as session:
        failures = check_invoice(session=session, invoice=invoice, exclude_id=document_id)
    return [{"check": type(f).__name__, "field": f.field, "message": f.message} for f in failures]


@step(name="ap.match")
def match(output: dict[str, Any]) -> Envelope:
    def run() -> dict[str, Any]:
        cfg = load_config(current().settings.data_dir)
        invoice = invoice_from_output(output)
        erp = _payables()
        party = erp.supplier(ico=invoice.supplier.ico, dic=invoice.supplier.dic)
        if party is None:
            result = matching.match(invoice, None, cfg.tolerances.default)
            return {**result.as_dict(), "party": None, "supplier_known": False}
        orders = erp.purchases(
            party=party, supplier_ico=invoice.supplier.ico, supplier_dic=invoice.supplier.dic
        )
        order = matching.find_order(invoice, orders)
        tolerance = cfg.tolerances.for_(
            supplier_ico=invoice.supplier.ico, category=order.category if order else None
        )
        result = matching.match(invoice, order, tolerance, three_way=cfg.three_way)
        return {**result.as_dict(), "party": party, "supplier_known": True}

    return guarded(run)


@step(name="ap.plan")
def plan(amount: str, matched: bool, checks_passed: bool) -> dict[str, Any]:
    cfg = load_config(current().settings.data_dir)
    decided = approval.plan(
        cfg.matrix, amount=Decimal(amount), matched=matched, checks_passed=checks_passed
    )
    return {
        "roles": list(decided.roles),
        "reason": decided.reason,
        "approver_role": cfg.matrix.approver_role,
    }


@step(name="ap.post")
def post(
    key: str, party: int, output: dict[str, Any], pairs: dict[str, int], order: Any
) -> Envelope:
    def run() -> dict[str, Any]:
        erp = _payables()
        invoice_id = erp.create_supplier_invoice(
            key=key,
            party=party,
            invoice=output,
            pairs={int(k): int(v) for k, v in pairs.items()},
            purchase_number=order,
        )
        posted = erp.post(invoice_id)
        _audit("ap.posted", "tryton_invoice", str(invoice_id), posted)
        return posted

    return guarded(run)


@step(name="ap.status")
def status(document_id: int, value: str) -> None:
    _set_status(document_id, value)


# -- the workflow -------------------------------------------------------------------------


def _exception_summary(
    output: dict[str, Any], failures: list[dict[str, Any]], matched: dict[str, Any]
) -> str:
    parts = [
        f"Faktura {output.get('number')} od {(output.get('supplier') or {}).get('name')} "
        f"na {output.get('total_with_vat')} {output.get('currency') or ''} čeká na kontrolu."
    ]
    if failures:
        parts.append(
            "Neprošlé kontroly / failed checks: "
            + "; ".join(f"{f['check']}: {f['message']}" for f in failures)
        )
    if matched.get("status") != "matched":
        parts.append(f"Párování s objednávkou / order match: {matched.get('status')}")
        if not matched.get("supplier_known", True):
            parts.append("dodavatel není v ERP / supplier unknown in the ERP")
        parts += [d["message"] for d in matched.get("differences") or []]
    return "\n".join(parts)[:4000]


def _approved(answer: dict[str, Any] | None) -> bool:
    return answer is not None and answer.get("decision") == "approve"


@flow(FLOW, subject_arg="subject")
def ap_intake(document_id: int, subject: str = "") -> FlowResult:
    """One supplier invoice from the store to a posted Tryton supplier invoice."""
    doc = read(document_id)
    assisted = assist(document_id)
    cost = float(assisted["cost"]) if assisted else 0.0
    if assisted and assisted.get("version"):
        doc = read(document_id)
    output = doc["invoice"]
    policy = reminder_policy()
    title = (subject or f"Faktura {output.get('number')}")[:200]
    key = f"ap:{doc['hash'][:32]}"
    failures = check(document_id, output)
    found = retrying(match, output)
    if not found["ok"]:
        status(document_id, "failed")
        return FlowResult(
            Outcome.failed, detail={"stage": "match", "error": found["error"]}, model_cost=cost
        )
    matched: dict[str, Any] = found["value"]
    detail: dict[str, Any] = {
        "document": document_id,
        "number": output.get("number"),
        "match": matched["status"],
        "order": matched.get("order_number"),
        "failed_checks": [f["check"] for f in failures],
        "approvals": [],
        "version": doc["version"],
    }
    if assisted:
        detail["model"] = assisted
    released_by: str | None = None
    if failures or matched["status"] != "matched":
        status(document_id, "exception")
        answer = reminders.wait_for_person(
            subject=title,
            summary=_exception_summary(output, failures, matched),
            topic="ap-exception",
            required_role="approver",
            policy=policy,
        )
        if not _approved(answer):
            status(document_id, "rejected")
            return FlowResult(
                Outcome.rejected,
                detail={**detail, "reason": (answer or {}).get("reason")},
                model_cost=cost,
            )
        assert answer is not None
        released_by = str(answer.get("actor"))
        detail["released_by"] = released_by
        # A person may have corrected the document before releasing it: post what they saw.
        again = read(document_id)
        if again["version"] != doc["version"]:
            doc, output = again, again["invoice"]
            detail.update(version=doc["version"], number=output.get("number"))
            failures = check(document_id, output)
            detail["failed_checks_after_release"] = [f["check"] for f in failures]
            refound = retrying(match, output)
            if refound["ok"]:
                matched = refound["value"]
                detail.update(match=matched["status"], order=matched.get("order_number"))
    if matched.get("party") is None:
        status(document_id, "rejected")
        return FlowResult(
            Outcome.rejected,
            detail={**detail, "reason": "supplier unknown in the ERP"},
            model_cost=cost,
        )
    amount = str(output.get("total_with_vat") or output.get("amount_due") or "0")
    decided = plan(amount, matched["status"] == "matched", not failures)
    roles: list[str] = decided["roles"]
    # The person who released an exception has looked at it as an approver would.
    if released_by is not None and roles and roles[0] == decided["approver_role"]:
        detail["approvals"].append({"role": roles[0], "actor": released_by})
        roles = roles[1:]
    if roles:
        status(document_id, "approval")
    deciders = {a["actor"] for a in detail["approvals"]}
    for step_no, role in enumerate(roles, start=1):
        tries = 0
        while True:
            answer = reminders.wait_for_person(
                policy=policy,
                subject=title,
                summary=f"Schválení {step_no}/{len(roles)} ({role}): faktura "
                f"{output.get('number')} na {amount} {output.get('currency') or ''}, "
                f"objednávka {matched.get('order_number')}. {decided['reason']}",
                topic=f"ap-approval-{step_no}-{tries}",
                required_role=role,
            )
            if not _approved(answer):
                status(document_id, "rejected")
                return FlowResult(
                    Outcome.rejected,
                    detail={**detail, "reason": (answer or {}).get("reason"), "role": role},
                    model_cost=cost,
                )
            assert answer is not None
            actor = str(answer.get("actor"))
            if actor not in deciders:
                break
            # Two approvers means two people: the same one again is asked to hand it on.
            tries += 1
            if tries >= MAX_SAME_PERSON_RETRIES:
                status(document_id, "rejected")
                return FlowResult(
                    Outcome.rejected,
                    detail={**detail, "reason": "the same person cannot approve twice"},
                    model_cost=cost,
                )
        deciders.add(actor)
        detail["approvals"].append({"role": role, "actor": actor})
    posted = retrying(post, key, int(matched["party"]), output, matched["pairs"],
                      matched.get("order_number"))  # fmt: skip
    if not posted["ok"]:
        status(document_id, "failed")
        return FlowResult(
            Outcome.failed, detail={**detail, "stage": "post", **posted}, model_cost=cost
        )
    status(document_id, "posted")
    human = released_by is not None or bool(roles)
    return FlowResult(
        Outcome.approved if human else Outcome.automated,
        detail={**detail, "invoice": posted["value"]},
        model_cost=cost,
    )


def start(settings: Settings, *, document_id: int, content_hash: str, subject: str = "") -> str:
    """Queue the run for a stored document; the same document twice runs once."""
    from spojka.runtime import engine

    return engine.enqueue(
        settings,
        FLOW,
        document_id,
        subject=subject[:200],
        workflow_id=workflow_id(content_hash),
    )
