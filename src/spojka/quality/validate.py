"""Validation against an entity's data contract: named problems, severities, a score.

``validate_record`` is pure: it normalises each field, collects every problem it finds
(format, check digit, missing mandatory value, cross-field rule) and scores the record
0-100. The normalised values come back too, so callers store what was checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from spojka.quality import normalize as nz
from spojka.quality.fields import ENTITY_FIELDS

Severity = Literal["error", "warning", "info"]

#: points a problem of each severity takes off the 100 a clean record scores
PENALTY: dict[str, int] = {"error": 30, "warning": 10, "info": 3}


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    field: str
    severity: Severity
    message: str


@dataclass(slots=True)
class RecordQuality:
    """The outcome of validating one record."""

    problems: list[Problem] = field(default_factory=list)
    normalized: dict[str, str] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return float(max(0, 100 - sum(PENALTY[p.severity] for p in self.problems)))

    @property
    def valid(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def add(self, code: str, field_name: str, severity: Severity, message: str) -> None:
        self.problems.append(Problem(code, field_name, severity, message))


# mandatory fields per entity contract (Account: name; Contact: last name)
MANDATORY: dict[str, tuple[str, ...]] = {"account": ("name",), "contact": ("last_name",)}
# fields whose problems are errors (identifiers and addresses people write to) vs warnings
_SEVERITY_OF_INVALID: dict[str, Severity] = {
    "ico": "error",
    "dic": "error",
    "email": "error",
    "iban": "error",
    "birth_date": "error",
    "phone": "warning",
    "domain": "warning",
    "zip": "warning",
}


def _present(value: object) -> bool:
    return value is not None and str(value).strip() != ""


def validate_record(
    entity: str, values: Mapping[str, str | None], *, today: date | None = None
) -> RecordQuality:
    """Every problem of one record of ``entity`` (account/contact) and its normalised values."""
    quality = RecordQuality()
    get = values.get
    for name in MANDATORY.get(entity, ()):
        if not _present(get(name)) and not (name == "last_name" and _present(get("full_name"))):
            quality.add(f"{name}_missing", name, "error", f"{name} is mandatory")

    def check(name: str, normaliser: object) -> str | None:
        raw = get(name)
        if not _present(raw):
            return None
        try:
            result = normaliser(str(raw))  # type: ignore[operator]
        except nz.InvalidValue as exc:
            quality.add(exc.problem, name, _SEVERITY_OF_INVALID.get(name, "warning"), exc.message)
            return None
        text = str(result)
        quality.normalized[name] = text
        return text

    ico = check("ico", nz.normalize_ico)
    dic = check("dic", nz.normalize_vat)
    email = check("email", nz.normalize_email)
    phone = check("phone", nz.normalize_phone)
    domain = check("domain", nz.normalize_domain)
    check("iban", nz.normalize_iban)
    psc = check("zip", nz.normalize_psc)

    if entity == "account":
        _account_rules(quality, values, ico=ico, dic=dic, email=email, domain=domain)
    else:
        _contact_rules(quality, values, email=email, phone=phone, today=today or date.today())

    country = (get("country") or "").strip().upper()[:2]
    if psc and country in {"CZ", "SK"} and nz.psc_country(psc) not in {None, country}:
        quality.add(
            "zip_country_mismatch",
            "zip",
            "warning",
            f"PSČ {psc} belongs to {nz.psc_country(psc)}, the record says {country}",
        )
    street = get("street")
    if _present(street):
        address = nz.normalize_address(street=str(street))
        if address.house_number is None and address.orientation_number is None:
            quality.add(
                "house_number_missing", "street", "info", f"street {street!r} has no house number"
            )
        quality.normalized["street"] = " ".join(
            p for p in (address.street, address.house_number) if p
        )
    return quality


def _account_rules(
    quality: RecordQuality,
    values: Mapping[str, str | None],
    *,
    ico: str | None,
    dic: str | None,
    email: str | None,
    domain: str | None,
) -> None:
    name = values.get("name")
    if _present(name):
        company = nz.normalize_company_name(str(name))
        quality.normalized["name"] = company.display
        if company.legal_form is None:
            quality.add(
                "legal_form_missing", "name", "info", f"name {name!r} carries no legal form"
            )
        letters = [ch for ch in str(name) if ch.isalpha()]
        if len(letters) > 4 and all(ch.isupper() for ch in letters):
            quality.add("name_all_caps", "name", "info", f"name {name!r} is written in capitals")
    country = (values.get("country") or "CZ").strip().upper()[:2] or "CZ"
    if not _present(values.get("ico")) and country in {"CZ", "SK"}:
        quality.add("ico_missing", "ico", "warning", "a CZ/SK company should have an IČO")
    if dic and ico and dic.startswith("CZ") and len(dic) == 10 and dic[2:] != ico:
        quality.add(
            "dic_ico_mismatch",
            "dic",
            "warning",
            f"DIČ {dic} of a Czech legal person should be CZ + IČO {ico}",
        )
    if dic and country in {"CZ", "SK"} and not dic.startswith(country):
        quality.add(
            "dic_country_mismatch", "dic", "warning", f"DIČ {dic} is not a {country} VAT id"
        )
    if email and domain:
        host = email.rpartition("@")[2]
        if host not in nz.FREEMAIL_DOMAINS and host != domain and not host.endswith("." + domain):
            quality.add(
                "email_domain_mismatch",
                "email",
                "info",
                f"e-mail domain {host} differs from the web domain {domain}",
            )


def _contact_rules(
    quality: RecordQuality,
    values: Mapping[str, str | None],
    *,
    email: str | None,
    phone: str | None,
    today: date,
) -> None:
    if not _present(values.get("first_name")) and not _present(values.get("full_name")):
        quality.add("first_name_missing", "first_name", "warning", "first name is missing")
    raw_birth = values.get("birth_date")
    if _present(raw_birth):
        try:
            born = nz.normalize_date(str(raw_birth))
        except nz.InvalidValue as exc:
            quality.add(exc.problem, "birth_date", "error", exc.message)
        else:
            quality.normalized["birth_date"] = born.isoformat()
            if born > today:
                quality.add(
                    "birth_date_future",
                    "birth_date",
                    "error",
                    f"birth date {born} is in the future",
                )
            elif (today - born).days > 120 * 365:
                quality.add(
                    "birth_date_implausible",
                    "birth_date",
                    "warning",
                    f"born {born}: over 120 years",
                )
    if not email and not phone and not _present(values.get("email")):
        quality.add(
            "no_contact_channel", "email", "warning", "neither a valid e-mail nor a phone number"
        )


# --------------------------------------------------------------------------- aggregation


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    entity: str
    system: str
    record_id: str
    score: float
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class GroupScore:
    entity: str
    system: str
    records: int
    average: float
    invalid: int  # records with at least one error


def summarize(records: Iterable[ScoredRecord]) -> list[GroupScore]:
    """Average score per (entity, system), worst first."""
    groups: dict[tuple[str, str], list[ScoredRecord]] = {}
    for record in records:
        groups.setdefault((record.entity, record.system), []).append(record)
    out = [
        GroupScore(
            entity=entity,
            system=system,
            records=len(items),
            average=round(sum(r.score for r in items) / len(items), 1),
            invalid=sum(1 for r in items if any(p.severity == "error" for p in r.problems)),
        )
        for (entity, system), items in groups.items()
    ]
    return sorted(out, key=lambda g: (g.average, g.entity, g.system))


def worst_first(records: Iterable[ScoredRecord], limit: int = 20) -> list[ScoredRecord]:
    return sorted(records, key=lambda r: (r.score, r.record_id))[:limit]


def known_fields(entity: str) -> tuple[str, ...]:
    return ENTITY_FIELDS.get(entity, ())
