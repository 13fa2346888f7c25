"""Validation: each problem has a name, a field and a severity; clean records score 100."""

from __future__ import annotations

from datetime import date

from spojka.quality.validate import ScoredRecord, summarize, validate_record, worst_first

CLEAN_ACCOUNT = {
    "name": "ACME s.r.o.",
    "ico": "25596641",
    "dic": "CZ25596641",
    "email": "info@acme.cz",
    "domain": "www.acme.cz",
    "phone": "+420 601 123 456",
    "street": "Vinohradská 1511/230",
    "zip": "100 00",
    "city": "Praha",
    "country": "CZ",
}


def _codes(values: dict[str, str], entity: str = "account") -> dict[str, str]:
    return {p.code: p.severity for p in validate_record(entity, values).problems}


def test_a_clean_company_scores_100_and_comes_back_normalised() -> None:
    quality = validate_record("account", {**CLEAN_ACCOUNT, "zip": "10000", "ico": "255 96 641"})
    assert quality.problems == []
    assert quality.score == 100
    assert quality.normalized["zip"] == "100 00"
    assert quality.normalized["ico"] == "25596641"
    assert quality.normalized["phone"] == "+420601123456"


def test_a_mistyped_ico_is_a_named_error() -> None:
    quality = validate_record("account", {**CLEAN_ACCOUNT, "ico": "25596642"})
    problem = next(p for p in quality.problems if p.field == "ico")
    assert (problem.code, problem.severity) == ("ico_checksum", "error")
    assert "25596642" in problem.message
    assert not quality.valid
    assert quality.score < 100


def test_cross_field_rules() -> None:
    codes = _codes({**CLEAN_ACCOUNT, "dic": "CZ27082440"})
    assert codes["dic_ico_mismatch"] == "warning"
    codes = _codes({**CLEAN_ACCOUNT, "zip": "811 01"})
    assert codes["zip_country_mismatch"] == "warning"
    codes = _codes({**CLEAN_ACCOUNT, "email": "obchod@jina-firma.cz"})
    assert codes["email_domain_mismatch"] == "info"


def test_mandatory_and_recommended_fields() -> None:
    codes = _codes({"name": "", "country": "CZ"})
    assert codes["name_missing"] == "error"
    codes = _codes({"name": "Firma Novák", "country": "CZ"})
    assert codes["ico_missing"] == "warning"
    assert codes["legal_form_missing"] == "info"


def test_contacts() -> None:
    today = date(2026, 1, 1)
    good = {"first_name": "Jan", "last_name": "Novák", "email": "jan@novak.cz"}
    assert validate_record("contact", good, today=today).score == 100
    future = validate_record("contact", {**good, "birth_date": "1. 1. 2030"}, today=today)
    assert {p.code for p in future.problems} == {"birth_date_future"}
    bare = {p.code for p in validate_record("contact", {"last_name": "Novák"}).problems}
    assert bare == {"first_name_missing", "no_contact_channel"}


def test_worse_problems_cost_more() -> None:
    info = validate_record("account", {**CLEAN_ACCOUNT, "name": "ACME SPOLECNOST"}).score
    warning = validate_record("account", {**CLEAN_ACCOUNT, "phone": "12"}).score
    error = validate_record("account", {**CLEAN_ACCOUNT, "email": "acme@"}).score
    assert 100 > info > warning > error


def test_summary_per_system_worst_first() -> None:
    records = [
        ScoredRecord("account", "crm", "1", 100.0, ()),
        ScoredRecord("account", "erp", "2", 40.0, ()),
        ScoredRecord("account", "erp", "3", 80.0, ()),
    ]
    groups = summarize(records)
    assert [(g.system, g.average) for g in groups] == [("erp", 60.0), ("crm", 100.0)]
    assert [r.record_id for r in worst_first(records, 2)] == ["2", "3"]
