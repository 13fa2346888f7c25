"""The flows' adapters to the CRM (BottleCRM or Tryton's opportunities), Redmine and Tryton.

Every write is idempotent: a retried step finds what its first attempt made (Redmine project
identifier and the ``Spojka ID`` issue field, a ``[spojka:key]`` marker in Tryton comments,
a marker in BottleCRM notes and task titles) instead of making a second one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from spojka.bootstrap import current
from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.mail.smtp import Notification, SentLog, SmtpSender
from spojka.connectors.redmine.client import RedmineClient
from spojka.connectors.tryton.client import TrytonClient
from spojka.core.errors import (
    ConfigError,
    NotFoundError,
    PermanentError,
    TransientError,
    ValidationError,
)
from spojka.flows import rules
from spojka.flows.config import FlowsConfig, SystemRef
from spojka.flows.config import load as load_config
from spojka.flows.rules import Deal, DealLine, ProjectPlan

KEY_FIELD = "Spojka ID"


def marker(key: str) -> str:
    return f"[spojka:{key}]"


def resolve(reference: str | None, what: str) -> str:
    """A credential from its reference (``env:``, ``file:`` or ``db:``)."""
    if not reference:
        raise ConfigError(f"flows configuration: {what} is not set")
    app = current()
    with app.sessions() as session:
        return app.secrets.resolve(session, reference)


def config() -> FlowsConfig:
    return load_config(current().settings.data_dir)


def _ref(cfg: FlowsConfig, name: str) -> SystemRef:
    ref = getattr(cfg.systems, name)
    if ref is None:
        raise ConfigError(f"flows configuration: systems.{name} is not configured")
    assert isinstance(ref, SystemRef)
    return ref


_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _cached(kind: str, url: str, make: Any) -> Any:
    with _lock:
        client = _clients.get((kind, url))
        if client is None:
            client = _clients[(kind, url)] = make()
        return client


def reset_clients() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def bottlecrm(cfg: FlowsConfig) -> BottleCRMClient:
    ref = _ref(cfg, "bottlecrm")
    token = resolve(ref.token, "systems.bottlecrm.token")
    return _cached("bottlecrm", ref.url, lambda: BottleCRMClient(ref.url, token, read_retries=1))


def redmine(cfg: FlowsConfig) -> RedmineClient:
    ref = _ref(cfg, "redmine")
    key = resolve(ref.token, "systems.redmine.token")
    return _cached("redmine", ref.url, lambda: RedmineClient(ref.url, key))


def tryton(cfg: FlowsConfig) -> TrytonClient:
    ref = _ref(cfg, "tryton")
    password = resolve(ref.password, "systems.tryton.password")
    return _cached(
        "tryton",
        ref.url,
        lambda: TrytonClient(ref.url, ref.database or "spojka", ref.user or "admin", password),
    )


def mailer(cfg: FlowsConfig) -> SmtpSender:
    smtp = cfg.systems.smtp
    if smtp is None:
        raise ConfigError("flows configuration: systems.smtp is not configured")
    sent_log = SentLog(current().settings.data_dir / "flows-sent-mail.sqlite")
    return SmtpSender(smtp.host, smtp.port, sender=smtp.sender, sent_log=sent_log)


# -- CRM: BottleCRM ----------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _email_of(person: Any) -> str | None:
    if not isinstance(person, dict):
        return None
    for key in ("email", "user_email"):
        if person.get(key):
            return str(person[key])
    for nested in ("user_details", "user"):
        found = _email_of(person.get(nested))
        if found:
            return found
    return None


@dataclass
class BottleCrm:
    """The deal side in BottleCRM."""

    client: BottleCRMClient
    base_url: str

    def line_items(self, deal_id: str) -> list[dict[str, Any]]:
        body = self.client.get(f"/api/opportunities/{deal_id}/line-items/")
        rows = body
        if isinstance(body, dict):
            rows = body.get("line_items") or body.get("results") or body.get("items") or []
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def fetch_deal(self, deal_id: str) -> Deal:
        opp = self.client.fetch("opportunities", deal_id)
        account_ref = opp.get("account") or {}
        account: dict[str, Any] = {}
        if isinstance(account_ref, dict) and account_ref.get("id"):
            account = self.client.fetch("accounts", str(account_ref["id"]))
        notes = rules.fields_from_notes(
            " ".join(str(x or "") for x in (account.get("description"), opp.get("description")))
        )
        custom = {**(account.get("custom_fields") or {}), **(opp.get("custom_fields") or {})}
        contacts = opp.get("contacts") or []
        contact = contacts[0] if contacts and isinstance(contacts[0], dict) else {}
        owners = opp.get("assigned_to") or []
        owner = _email_of(owners[0]) if owners else None
        owner = owner or _email_of(opp.get("created_by"))
        tags = {
            str(t.get("name", t) if isinstance(t, dict) else t).lower()
            for t in (account.get("tags") or [])
        }
        lines = [
            DealLine(
                name=str(item.get("name") or item.get("product_name") or "Položka"),
                quantity=_dec(item.get("quantity")) or Decimal(1),
                unit_price=_dec(item.get("unit_price")) or Decimal(0),
            )
            for item in self.line_items(deal_id)
        ]
        return Deal(
            source="bottlecrm",
            id=deal_id,
            name=str(opp.get("name") or ""),
            stage_won=opp.get("stage") == "CLOSED_WON" or opp.get("stage_kind") == "won",
            account_id=str(account["id"]) if account.get("id") else None,
            account_name=account.get("name"),
            ico=custom.get("ico") or notes.get("ico"),
            dic=custom.get("dic") or notes.get("dic"),
            account_blocked=bool(account)
            and (account.get("is_active") is False or bool(tags & {"blokováno", "blocked"})),
            contact_name=" ".join(
                p for p in (contact.get("first_name"), contact.get("last_name")) if p
            )
            or None,
            contact_email=contact.get("email"),
            amount=_dec(opp.get("amount")),
            currency=opp.get("currency"),
            expected_start=_date(custom.get("expected_start") or notes.get("expected_start")),
            opportunity_type=opp.get("opportunity_type"),
            owner_email=owner,
            lines=lines,
            url=f"{self.base_url.rstrip('/')}/opportunities/{deal_id}",
        )

    def notes(self, deal_id: str) -> list[str]:
        return [str(c.get("comment", "")) for c in self.client.comments("opportunities", deal_id)]

    def add_note(self, deal_id: str, text: str, key: str) -> bool:
        """A note on the deal, once per key; True when it was added now."""
        tag = marker(key)
        if any(tag in note for note in self.notes(deal_id)):
            return False
        self.client.add_comment("opportunities", deal_id, f"{text}\n{tag}")
        return True

    def url(self, kind: str, record_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/{kind}/{record_id}"

    def account_detail(self, account_id: str) -> dict[str, Any]:
        """The account with its deals, tasks, cases and notes (one call)."""
        body = self.client.get(f"/api/accounts/{account_id}/")
        return dict(body) if isinstance(body, dict) else {}

    def upsert_account_task(
        self,
        account_id: str,
        key: str,
        *,
        title: str,
        status: str,
        priority: str,
        due_date: dt.date | None,
        description: str,
    ) -> tuple[str, str]:
        """The account's task for ``key``: created once, then updated when it changed.

        Answers ``(task id, "created" | "updated" | "unchanged")``.
        """
        tag = marker(key)
        payload: dict[str, Any] = {
            "title": f"{title[: 199 - len(tag)]} {tag}",
            "status": status,
            "priority": priority,
            "due_date": due_date.isoformat() if due_date else None,
            "description": description,
        }
        for task in self.client.find("tasks", {"title": tag}):
            if tag not in str(task.get("title")):
                continue
            task_id = str(task["id"])
            current = self.client.fetch("tasks", task_id)
            if all(str(current.get(k) or "") == str(v or "") for k, v in payload.items()):
                return task_id, "unchanged"
            self.client.update("tasks", task_id, payload)
            return task_id, "updated"
        return self.client.create("tasks", {**payload, "account": account_id}), "created"

    def open_task(self, deal: Deal, title: str, description: str, key: str) -> str:
        """A task for the deal owner, once per key."""
        full = f"{title} {marker(key)}"
        for task in self.client.iter_all("tasks"):
            if task.get("title") == full:
                return str(task["id"])
        payload: dict[str, Any] = {
            "title": full,
            "status": "New",
            "priority": "High",
            "description": description,
            "opportunity": deal.id,
            "due_date": dt.date.today().isoformat(),
        }
        # BottleCRM links a task to one parent only: the deal, where its owner looks.
        return self.client.create("tasks", payload)


# -- CRM: Tryton opportunities ------------------------------------------------------------------


@dataclass
class TrytonCrm:
    """The deal side in Tryton (``sale.opportunity``), for companies that run only Tryton."""

    client: TrytonClient
    owner_fallback: str

    def fetch_deal(self, deal_id: str) -> Deal:
        rows = self.client.read(
            "sale.opportunity",
            [int(deal_id)],
            [
                "description",
                "party",
                "party.rec_name",
                "party.active",
                "contact",
                "contact.rec_name",
                "contact.value",
                "amount",
                "currency.code",
                "start_date",
                "state",
                "employee",
                "employee.party",
                "lines",
                "comment",
            ],
        )
        if not rows:
            raise NotFoundError(f"Tryton opportunity {deal_id} not found")
        opp = rows[0]
        party = opp.get("party")
        ico = dic = None
        if party:
            for ident in self.client.search_read(
                "party.identifier", [("party", "=", party)], ["type", "code"]
            ):
                code = str(ident.get("code") or "")
                if ident.get("type") in ("cz_vat", "sk_vat", "eu_vat"):
                    dic = code
                elif code.isdigit() and len(code) == 8:
                    ico = code
        owner = None
        employee_party = (opp.get("employee.") or {}).get("party") if opp.get("employee") else None
        if employee_party:
            mechs = self.client.search_read(
                "party.contact_mechanism",
                [("party", "=", employee_party), ("type", "=", "email")],
                ["value"],
                limit=1,
            )
            owner = mechs[0]["value"] if mechs else self.owner_fallback
        lines = []
        if opp.get("lines"):
            for line in self.client.read(
                "sale.opportunity.line", opp["lines"], ["product.rec_name", "quantity"]
            ):
                product = (line.get("product.") or {}).get("rec_name") or "Položka"
                lines.append(
                    DealLine(product, _dec(line.get("quantity")) or Decimal(1), Decimal(0))
                )
        contact = opp.get("contact.") or {}
        return Deal(
            source="tryton",
            id=str(deal_id),
            name=str(opp.get("description") or f"Příležitost {deal_id}"),
            stage_won=opp.get("state") == "won",
            account_id=str(party) if party else None,
            account_name=(opp.get("party.") or {}).get("rec_name"),
            ico=ico,
            dic=dic,
            account_blocked=(opp.get("party.") or {}).get("active") is False,
            contact_name=contact.get("rec_name"),
            contact_email=contact.get("value"),
            amount=_dec(opp.get("amount")),
            currency=(opp.get("currency.") or {}).get("code"),
            expected_start=_date(opp.get("start_date")),
            opportunity_type=None,
            owner_email=owner,
            lines=lines,
            url=None,
        )

    def notes(self, deal_id: str) -> list[str]:
        rows = self.client.search_read(
            "ir.note", [("resource", "=", f"sale.opportunity,{int(deal_id)}")], ["message"]
        )
        return [str(r.get("message") or "") for r in rows]

    def add_note(self, deal_id: str, text: str, key: str) -> bool:
        """A note attached to the opportunity (its own fields are read-only once won)."""
        if any(marker(key) in note for note in self.notes(deal_id)):
            return False
        self.client.create(
            "ir.note",
            [{"resource": f"sale.opportunity,{int(deal_id)}", "message": f"{text}\n{marker(key)}"}],
        )
        return True

    def open_task(self, deal: Deal, title: str, description: str, key: str) -> str:
        # Tryton's CRM has no tasks: the owner sees the reason on the opportunity itself.
        self.add_note(deal.id, f"ÚKOL: {title}\n{description}", key)
        return f"note:{deal.id}"

    def won_since(self, since: dt.datetime | None) -> list[int]:
        domain: list[Any] = [("state", "=", "won")]
        if since is not None:
            domain.append(("write_date", ">=", since))
        return [int(i) for i in self.client.search("sale.opportunity", domain, limit=1000)]

    def deals_of(self, party: int) -> list[dict[str, Any]]:
        """The party's opportunities (every state), newest first."""
        return self.client.search_read(
            "sale.opportunity",
            [("party", "=", party)],
            [
                "description",
                "state",
                "amount",
                "currency.code",
                "conversion_probability",
                "end_date",
                "start_date",
                "sales",
            ],
            order=[("id", "DESC")],
        )

    def sale_of(self, deal_id: str) -> int | None:
        (row,) = self.client.read("sale.opportunity", [int(deal_id)], ["sales"])
        sales = row.get("sales") or []
        return int(sales[0]) if sales else None


def crm(cfg: FlowsConfig, source: str) -> BottleCrm | TrytonCrm:
    if source == "bottlecrm":
        return BottleCrm(bottlecrm(cfg), _ref(cfg, "bottlecrm").url)
    if source == "tryton":
        return TrytonCrm(tryton(cfg), cfg.people.account_owner_fallback)
    raise ConfigError(f"unknown CRM {source!r}: use bottlecrm or tryton")


# -- PM: Redmine ---------------------------------------------------------------------------------


LEDGER_PAGE = "Fakturace"
LEDGER_HEADER = (
    "# Fakturace\n\n"
    "Vedeno Spojkou: faktury z ERP a jejich úhrady / invoices and payments, kept by Spojka.\n\n"
    "| Faktura | Za | Částka s DPH | Splatnost | Stav |\n"
    "|---|---|---|---|---|"
)


class RedminePm:
    def __init__(self, client: RedmineClient) -> None:
        self.client = client
        self._ids: dict[str, dict[str, int]] = {}

    def _lookup(self, what: str) -> dict[str, int]:
        if what not in self._ids:
            if what == "trackers":
                rows = self.client.get("/trackers.json")["trackers"]
            elif what == "custom_fields":
                # Issue fields only: the time-entry field of the same name has its own id.
                rows = [
                    f
                    for f in self.client.get("/custom_fields.json")["custom_fields"]
                    if f.get("customized_type") == "issue"
                ]
            elif what == "time_entry_fields":
                rows = [
                    f
                    for f in self.client.get("/custom_fields.json")["custom_fields"]
                    if f.get("customized_type") == "time_entry"
                ]
            elif what == "roles":
                rows = self.client.get("/roles.json")["roles"]
            else:
                rows = self.client.get("/users.json", limit=100)["users"]
                self._ids[what] = {str(r["login"]): int(r["id"]) for r in rows}
                return self._ids[what]
            self._ids[what] = {str(r["name"]): int(r["id"]) for r in rows}
        return self._ids[what]

    def project(self, identifier: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.get(f"/projects/{identifier}.json")["project"])
        except NotFoundError:
            return None

    def ensure_project(
        self, plan: ProjectPlan, *, pm_login: str | None, manager_role: str, key: str
    ) -> dict[str, Any]:
        project = self.project(plan.identifier)
        if project is None:
            project = self.client.create_project(
                {
                    "name": plan.name,
                    "identifier": plan.identifier,
                    "description": plan.description,
                    "is_public": False,
                    "tracker_ids": list(self._lookup("trackers").values()),
                }
            )
        project_id = int(project["id"])
        versions = {
            str(v["name"]): int(v["id"])
            for v in self.client.get(f"/projects/{project_id}/versions.json")["versions"]
        }
        for milestone in plan.milestones:
            if milestone.name not in versions:
                created = self.client.create_version(
                    project_id,
                    {
                        "name": milestone.name,
                        "due_date": milestone.due_date.isoformat(),
                        "description": f"Fakturace: {milestone.amount} {plan.currency}",
                        "sharing": "none",
                    },
                )
                versions[milestone.name] = int(created["id"])
        fields = self._lookup("custom_fields")
        key_field = fields.get(KEY_FIELD)
        effort_field = next((i for n, i in fields.items() if n.startswith("Odhad")), None)
        existing: set[str] = set()
        for issue in self.client.iter_all(
            "/issues.json", "issues", project_id=project_id, status_id="*"
        ):
            for cf in issue.get("custom_fields", []):
                if cf.get("id") == key_field and cf.get("value"):
                    existing.add(str(cf["value"]))
        tracker = self._lookup("trackers").get("Task") or next(
            iter(self._lookup("trackers").values())
        )
        for number, task in enumerate(plan.tasks, start=1):
            task_key = f"{key}:wbs:{number}"
            if task_key in existing:
                continue
            custom = [{"id": key_field, "value": task_key}] if key_field else []
            if effort_field:
                custom.append({"id": effort_field, "value": str(task.hours)})
            self.client.create_issue(
                {
                    "project_id": project_id,
                    "tracker_id": tracker,
                    "subject": task.subject,
                    "estimated_hours": float(task.hours),
                    "fixed_version_id": versions.get(task.milestone),
                    "description": f"Role: {task.role}",
                    "custom_fields": custom,
                }
            )
        if pm_login:
            user = self._lookup("users").get(pm_login)
            role = self._lookup("roles").get(manager_role)
            if user and role:
                members = self.client.get(f"/projects/{project_id}/memberships.json")
                if not any((m.get("user") or {}).get("id") == user for m in members["memberships"]):
                    self.client.add_membership(project_id, user, [role])
        return {
            "id": project_id,
            "identifier": plan.identifier,
            "url": f"{self.client.url.rstrip('/')}/projects/{plan.identifier}",
            "versions": versions,
        }

    def close_project(self, identifier: str, reason: str) -> bool:
        """Take a half-provisioned project out of use: closed milestones, a visible name.

        Redmine 5.0's REST API cannot archive or close a project, so Spojka closes its
        versions, marks the name and writes the reason into the description.
        """
        project = self.project(identifier)
        if project is None:
            return False
        project_id = int(project["id"])
        for version in self.client.get(f"/projects/{project_id}/versions.json")["versions"]:
            if version.get("status") != "closed":
                self.client.put(
                    f"/versions/{version['id']}.json", {"version": {"status": "closed"}}
                )
        name = str(project["name"])
        if not name.startswith("[ZRUŠENO]"):
            self.client.put(
                f"/projects/{project_id}.json",
                {
                    "project": {
                        "name": f"[ZRUŠENO] {name}"[:255],
                        "description": f"Zrušeno Spojkou: {reason}\n\n"
                        + str(project.get("description") or ""),
                    }
                },
            )
        return True

    def url(self, path: str) -> str:
        return f"{self.client.url.rstrip('/')}/{path.lstrip('/')}"

    def _time_key_field(self) -> int:
        field = self._lookup("time_entry_fields").get(KEY_FIELD)
        if field is None:
            raise ConfigError(
                f"Redmine has no time-entry custom field {KEY_FIELD!r}: Spojka marks billed "
                "time entries with it (add it as a filterable text field)"
            )
        return field

    def unbilled_time(self, project_id: str, until: dt.date) -> list[dict[str, Any]]:
        """Time entries of a project up to ``until`` that no invoice has billed yet."""
        field = self._time_key_field()
        params: dict[str, Any] = {
            "project_id": project_id,
            "to": until.isoformat(),
            f"cf_{field}": "!*",
        }
        rows = self.client.iter_all("/time_entries.json", "time_entries", **params)
        return [
            {
                "id": int(r["id"]),
                "hours": str(r["hours"]),
                "activity": (r.get("activity") or {}).get("name"),
                "user": (r.get("user") or {}).get("name"),
                "spent_on": r.get("spent_on"),
                "issue": (r.get("issue") or {}).get("id"),
            }
            for r in rows
        ]

    def mark_billed(self, entry_ids: list[int], label: str) -> None:
        """Write the invoice onto each billed time entry (the same value twice is a no-op)."""
        field = self._time_key_field()
        for entry_id in entry_ids:
            self.client.put(
                f"/time_entries/{entry_id}.json",
                {"time_entry": {"custom_fields": [{"id": field, "value": label}]}},
            )

    def upsert_ledger(
        self,
        identifier: str,
        number: str,
        *,
        state: str,
        what: str | None = None,
        amount: str | None = None,
        due: str | None = None,
    ) -> bool:
        """One row per invoice on the project's wiki page ``Fakturace``; True if it changed."""
        path = f"/projects/{identifier}/wiki/{LEDGER_PAGE}.json"
        try:
            text = str(self.client.get(path)["wiki_page"]["text"] or "")
        except NotFoundError:
            text = LEDGER_HEADER
        lines = text.rstrip("\n").splitlines()
        prefix = f"| {number} |"
        for index, line in enumerate(lines):
            if line.startswith(prefix):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                cells += ["–"] * (5 - len(cells))
                new = [number, what or cells[1], amount or cells[2], due or cells[3], state]
                row = "| " + " | ".join(new) + " |"
                if row == line:
                    return False
                lines[index] = row
                break
        else:
            lines.append(f"| {number} | {what or '–'} | {amount or '–'} | {due or '–'} | {state} |")
        self.client.put(
            path, {"wiki_page": {"text": "\n".join(lines) + "\n", "comments": f"Spojka: {number}"}}
        )
        return True

    def closed_versions(self, identifier: str) -> list[dict[str, Any]]:
        project = self.project(identifier)
        if project is None:
            return []
        rows = self.client.get(f"/projects/{project['id']}/versions.json")["versions"]
        return [dict(v) for v in rows if v.get("status") == "closed"]


# -- ERP: Tryton ---------------------------------------------------------------------------------


@contextlib.contextmanager
def unique_races() -> Iterator[None]:
    """Tryton on SQLite has no row locks: two records created at once can draw the same code
    or number from a sequence. The steps are idempotent, so such a clash is worth a retry."""
    try:
        yield
    except PermanentError as exc:
        if "must be unique" in exc.message:
            raise TransientError(f"{exc.message} (concurrent create; retried)") from exc
        raise


class TrytonErp:
    def __init__(self, client: TrytonClient) -> None:
        self.client = client

    def party_by_ico(self, ico: str) -> int | None:
        found = self.client.search_read(
            "party.identifier", [("code", "=", ico)], ["party"], limit=1
        )
        return int(found[0]["party"]) if found else None

    def overdue(self, ico: str | None) -> Decimal:
        """What the customer owes past due today (0 for a new customer)."""
        party = self.party_by_ico(ico) if ico else None
        if party is None:
            return Decimal(0)
        (row,) = self.client.read("party.party", [party], ["receivable_today"])
        return Decimal(str(row.get("receivable_today") or 0))

    def currency_id(self, code: str) -> int:
        found = self.client.search("currency.currency", [("code", "=", code.upper())], limit=1)
        if not found:
            raise ValidationError(f"Tryton: měna {code} není založena / currency {code} unknown")
        return int(found[0])

    def ensure_party(self, deal: Deal, key: str) -> int:
        assert deal.ico
        existing = self.party_by_ico(deal.ico)
        if existing is not None:
            return existing
        identifiers: list[dict[str, Any]] = [
            {"type": None, "code": deal.ico},
            {"type": None, "code": f"spojka:{key}"},
        ]
        if deal.dic:
            kind = "sk_vat" if deal.dic.upper().startswith("SK") else "cz_vat"
            identifiers.append({"type": kind, "code": deal.dic.upper()})
        mechanisms = []
        if deal.contact_email:
            mechanisms.append(
                {"type": "email", "value": deal.contact_email, "name": deal.contact_name or ""}
            )
        with unique_races():
            (party_id,) = self.client.create(
                "party.party",
                [
                    {
                        "name": deal.account_name,
                        "identifiers": [["create", identifiers]],
                        "contact_mechanisms": [["create", mechanisms]],
                        "addresses": [["create", [{}]]],
                    }
                ],
            )
        return int(party_id)

    def product_id(self, name: str) -> int:
        found = self.client.search("product.product", [("rec_name", "=", name)], limit=1)
        if not found:
            found = self.client.search("product.product", [("name", "ilike", f"%{name}%")], limit=1)
        if not found:
            raise ValidationError(f"Tryton: produkt {name!r} neexistuje / product unknown")
        return int(found[0])

    def _line(
        self, product: int, quantity: Decimal, unit_price: Decimal, text: str
    ) -> dict[str, Any]:
        (prod,) = self.client.read(
            "product.product", [product], ["default_uom", "template.account_category"]
        )
        category = (prod.get("template.") or {}).get("account_category")
        values: dict[str, Any] = {
            "type": "line",
            "product": product,
            "quantity": float(quantity),
            "unit": prod["default_uom"],
            "unit_price": unit_price,
            "description": text,
        }
        if category:
            (cat,) = self.client.read(
                "product.category", [category], ["customer_taxes_used", "account_revenue"]
            )
            values["taxes"] = [["add", list(cat.get("customer_taxes_used") or [])]]
            values["_revenue"] = cat.get("account_revenue")
        return values

    def _marked(self, model: str, key: str) -> int | None:
        found = self.client.search(model, [("comment", "like", f"%{marker(key)}%")], limit=1)
        return int(found[0]) if found else None

    def ensure_sale(
        self, deal: Deal, party: int, plan: ProjectPlan, product: str, key: str
    ) -> dict[str, Any]:
        """The sales order for the deal: quoted and confirmed, billed manually by milestone."""
        sale_id = self._marked("sale.sale", key)
        if sale_id is None:
            currency = self.currency_id(plan.currency)
            product_id = self.product_id(product)
            addresses = self.client.search("party.address", [("party", "=", party)], limit=1)
            lines = []
            for milestone in plan.milestones:
                line = self._line(
                    product_id, Decimal(1), milestone.amount, f"{plan.name}: {milestone.name}"
                )
                line.pop("_revenue", None)
                lines.append(line)
            values: dict[str, Any] = {
                "party": party,
                "company": self.client.company_id,
                "currency": currency,
                "description": plan.name[:200],
                "reference": deal.key,
                "invoice_method": "manual",
                "comment": f"Projekt {plan.identifier}\n{marker(key)}",
                "lines": [["create", lines]],
            }
            if addresses:
                values["invoice_address"] = addresses[0]
                values["shipment_address"] = addresses[0]
            (sale_id,) = self.client.create("sale.sale", [values])
        with unique_races():
            return self.confirm_sale(int(sale_id))

    def confirm_sale(self, sale_id: int) -> dict[str, Any]:
        (row,) = self.client.read("sale.sale", [sale_id], ["state"])
        if row["state"] == "draft":
            self.client.button("sale.sale", "quote", [sale_id])
            row["state"] = "quotation"
        if row["state"] == "quotation":
            self.client.button("sale.sale", "confirm", [sale_id])
        (row,) = self.client.read("sale.sale", [sale_id], ["state", "number", "total_amount"])
        return {
            "id": sale_id,
            "number": row.get("number"),
            "state": row.get("state"),
            "total": str(row.get("total_amount")),
        }

    def sale_facts(self, sale_id: int) -> dict[str, Any]:
        """Party, currency, number and the billed product of a sales order."""
        (row,) = self.client.read(
            "sale.sale", [sale_id], ["party", "currency.code", "number", "lines"]
        )
        product = None
        if row.get("lines"):
            (line,) = self.client.read("sale.line", row["lines"][:1], ["product"])
            product = line.get("product")
        return {
            "party": int(row["party"]),
            "currency": (row.get("currency.") or {}).get("code"),
            "number": row.get("number"),
            "product": product,
        }

    def cancel_sale(self, sale_id: int) -> None:
        (row,) = self.client.read("sale.sale", [sale_id], ["state"])
        if row["state"] in ("draft", "quotation"):
            self.client.button("sale.sale", "cancel", [sale_id])

    # -- invoices ---------------------------------------------------------------------------

    def invoice_draft(
        self,
        *,
        party: int,
        currency: str,
        product: int,
        amount: Decimal,
        text: str,
        sale_number: str | None,
        payment_days: int,
        key: str,
    ) -> int:
        """A customer invoice draft (``account.invoice`` out) for one milestone."""
        return self.invoice_draft_lines(
            party=party,
            currency=currency,
            product=product,
            lines=[(Decimal(1), amount, text)],
            text=text,
            sale_number=sale_number,
            key=key,
        )

    def invoice_draft_lines(
        self,
        *,
        party: int,
        currency: str,
        product: int,
        lines: list[tuple[Decimal, Decimal, str]],
        text: str,
        sale_number: str | None,
        key: str,
    ) -> int:
        """A customer invoice draft with ``(quantity, unit price, text)`` lines of one product,
        taxed by the product's category (VAT); once per key."""
        found = self._marked("account.invoice", key)
        if found is not None:
            return found
        receivable = self._receivable_account(party)
        currency_id = self.currency_id(currency)
        rows = []
        for quantity, unit_price, line_text in lines:
            line = self._line(product, quantity, unit_price, line_text)
            revenue = line.pop("_revenue", None)
            if revenue:
                line["account"] = revenue
            line["currency"] = currency_id
            line["company"] = self.client.company_id
            rows.append(line)
        addresses = self.client.search("party.address", [("party", "=", party)], limit=1)
        values: dict[str, Any] = {
            "type": "out",
            "party": party,
            "company": self.client.company_id,
            "currency": currency_id,
            "account": receivable,
            "description": text[:200],
            "reference": sale_number,
            "comment": f"{text}\n{marker(key)}",
            "lines": [["create", rows]],
        }
        if addresses:
            values["invoice_address"] = addresses[0]
        (conf,) = self.client.read("account.configuration", [1], ["default_customer_payment_term"])
        if conf.get("default_customer_payment_term"):
            values["payment_term"] = conf["default_customer_payment_term"]
        journals = self.client.search("account.journal", [("type", "=", "revenue")], limit=1)
        if journals:
            values["journal"] = journals[0]
        (invoice_id,) = self.client.create(
            "account.invoice", [{k: v for k, v in values.items() if v is not None}]
        )
        return int(invoice_id)

    def _receivable_account(self, party: int) -> int | None:
        (row,) = self.client.read("party.party", [party], ["account_receivable"])
        if row.get("account_receivable"):
            return int(row["account_receivable"])
        (conf,) = self.client.read("account.configuration", [1], ["default_account_receivable"])
        found = conf.get("default_account_receivable")
        return int(found) if found else None

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        rows = self.client.read(
            "account.invoice",
            [invoice_id],
            [
                "state",
                "number",
                "total_amount",
                "untaxed_amount",
                "tax_amount",
                "currency.code",
                "lines_to_pay",
                "invoice_date",
            ],
        )
        if not rows:
            raise PermanentError(f"Tryton invoice {invoice_id} does not exist")
        row = rows[0]
        due = None
        if row.get("lines_to_pay"):
            lines = self.client.read("account.move.line", row["lines_to_pay"], ["maturity_date"])
            dates = [ln["maturity_date"] for ln in lines if ln.get("maturity_date")]
            due = min(dates).isoformat() if dates else None
        return {
            "id": invoice_id,
            "state": row.get("state"),
            "number": row.get("number"),
            "total": str(row.get("total_amount")),
            "untaxed": str(row.get("untaxed_amount")),
            "tax": str(row.get("tax_amount")),
            "currency": (row.get("currency.") or {}).get("code"),
            "due_date": due,
        }

    def url(self, model: str, record_id: int | str) -> str:
        """The Tryton client's link to a record (``tryton://host:port/db/model/…``)."""
        netloc = urlsplit(self.client.url).netloc
        return f"tryton://{netloc}/{self.client.database}/model/{model}/{record_id}"

    def customer_invoices(self, domain: list[Any]) -> list[dict[str, Any]]:
        """Customer invoices matching ``domain`` with what is still to pay and the due date."""
        rows = self.client.search_read(
            "account.invoice",
            [("type", "=", "out"), *domain],
            [
                "number",
                "state",
                "total_amount",
                "amount_to_pay",
                "currency.code",
                "invoice_date",
                "lines_to_pay",
                "description",
                "reference",
                "comment",
            ],
            order=[("invoice_date", "DESC"), ("id", "DESC")],
        )
        line_ids = [i for row in rows for i in row.get("lines_to_pay") or []]
        maturity: dict[int, dt.date] = {}
        if line_ids:
            for line in self.client.read("account.move.line", line_ids, ["maturity_date"]):
                if line.get("maturity_date"):
                    maturity[int(line["id"])] = line["maturity_date"]
        found = []
        for row in rows:
            dates = [maturity[i] for i in row.get("lines_to_pay") or [] if i in maturity]
            total = Decimal(str(row.get("total_amount") or 0))
            to_pay = Decimal(str(row.get("amount_to_pay") or 0))
            if row.get("state") in ("draft", "validated", "cancelled"):
                to_pay = Decimal(0) if row.get("state") == "cancelled" else total
            found.append(
                {
                    "id": int(row["id"]),
                    "number": row.get("number"),
                    "state": row.get("state"),
                    "total": total,
                    "to_pay": to_pay,
                    "currency": (row.get("currency.") or {}).get("code"),
                    "invoice_date": _date(row.get("invoice_date")),
                    "due_date": min(dates) if dates else None,
                    "description": row.get("description"),
                    "reference": row.get("reference"),
                    "comment": row.get("comment") or "",
                    "url": self.url("account.invoice", row["id"]),
                }
            )
        return found

    def post_invoice(self, invoice_id: int) -> dict[str, Any]:
        with unique_races():
            return self._post(invoice_id)

    def _post(self, invoice_id: int) -> dict[str, Any]:
        state = self.invoice(invoice_id)["state"]
        if state == "draft":
            self.client.button("account.invoice", "validate_invoice", [invoice_id])
            state = "validated"
        if state == "validated":
            self.client.button("account.invoice", "post", [invoice_id])
        return self.invoice(invoice_id)


def notify(cfg: FlowsConfig, *, key: str, to: list[str], subject: str, text: str) -> str:
    sender = mailer(cfg)
    result = sender.send(Notification(idempotency_key=key, to=to, subject=subject, text=text))
    return result.message_id
