"""Pre-flight checks, template choice and the project plan of a won deal (pure rules)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from spojka.flows import config, rules
from spojka.flows.rules import Deal, DealLine

pytestmark = pytest.mark.flows


@pytest.fixture
def cfg() -> config.FlowsConfig:
    return config.parse(config.read_yaml(config.DEFAULTS))


def _deal(**changes: object) -> Deal:
    values: dict[str, object] = dict(
        source="bottlecrm",
        id="d-1",
        name="Implementace ERP – Vysočina",
        stage_won=True,
        account_id="a-1",
        account_name="Strojírny Vysočina s.r.o.",
        ico="25596641",
        dic="CZ25596641",
        contact_name="Zdeněk Šťastný",
        contact_email="zdenek@vysocina-stroje.cz",
        amount=Decimal("240000"),
        currency="EUR",
        expected_start=date(2027, 1, 4),
        opportunity_type="NEW_BUSINESS",
        owner_email="obchodnik@spojka-demo.cz",
        lines=[DealLine("Implementace ERP", Decimal(120), Decimal(2000))],
    )
    values.update(changes)
    return Deal(**values)  # type: ignore[arg-type]


def test_a_complete_won_deal_passes(cfg: config.FlowsConfig) -> None:
    assert rules.preflight(_deal(), config=cfg, linked_project=None, overdue=Decimal(0)) == []


def test_each_missing_piece_is_named_for_the_owner(cfg: config.FlowsConfig) -> None:
    deal = _deal(
        ico="25596642",
        contact_name=None,
        contact_email=None,
        expected_start=None,
        owner_email=None,
        amount=None,
    )
    problems = rules.preflight(deal, config=cfg, linked_project=None)
    text = "\n".join(problems)
    assert "IČO '25596642'" in text
    assert "kontaktní osoba" in text
    assert "zahájení" in text
    assert "vlastníka" in text
    assert "částka" in text
    assert len(problems) == 5


def test_blocked_overdue_or_already_linked_customers_stop_the_handoff(
    cfg: config.FlowsConfig,
) -> None:
    assert rules.preflight(_deal(account_blocked=True), config=cfg, linked_project=None)
    assert rules.preflight(_deal(), config=cfg, linked_project=None, overdue=Decimal("1200"))
    linked = rules.preflight(_deal(), config=cfg, linked_project="z-1")
    assert linked == ["obchod už má projekt z-1 / a project is already linked"]


def test_identifiers_are_read_from_crm_notes() -> None:
    found = rules.fields_from_notes("IČO: 25596641\nDIČ: cz25596641\nZahájení: 2027-01-04")
    assert found == {"ico": "25596641", "dic": "CZ25596641", "expected_start": "2027-01-04"}
    assert rules.valid_dic("SK2020317068")
    assert not rules.valid_dic("CZ12345678")


def test_template_by_keyword_then_type_then_default(cfg: config.FlowsConfig) -> None:
    assert rules.choose_template(_deal(), cfg) == "implementace"
    training = _deal(name="Školení účetních", lines=[], opportunity_type=None)
    assert rules.choose_template(training, cfg) == "skoleni"
    renewal = _deal(name="Prodloužení", lines=[], opportunity_type="RENEWAL")
    assert rules.choose_template(renewal, cfg) == "podpora"
    other = _deal(name="Něco jiného", lines=[], opportunity_type=None)
    assert rules.choose_template(other, cfg) == cfg.default_template


def test_plan_bills_exactly_the_deal_amount_across_dated_milestones(
    cfg: config.FlowsConfig,
) -> None:
    plan = rules.plan_project(_deal(amount=Decimal("100000.01")), "implementace", cfg)
    assert sum(m.amount for m in plan.milestones) == Decimal("100000.01")
    assert [m.due_date for m in plan.milestones] == [
        date(2027, 1, 18),
        date(2027, 2, 18),
        date(2027, 3, 5),
    ]
    assert plan.budget_hours == Decimal(184)
    assert plan.identifier == rules.project_identifier(_deal())
    assert "IČO 25596641" in plan.description
    assert "SLA: reakce 8 h" in plan.description


def test_milestone_amount_round_trips_through_the_version_description() -> None:
    assert rules.milestone_amount("Fakturace: 72000.00 EUR") == Decimal("72000.00")
    assert rules.milestone_amount("bez částky") is None
    assert rules.vat(Decimal("1000"), Decimal("21")) == Decimal("210.00")
    assert rules.needs_approval(Decimal("60000"), Decimal("50000"))
    assert not rules.needs_approval(Decimal("50000"), Decimal("50000"))
