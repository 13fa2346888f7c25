"""How the local BottleCRM finds its interpreter and says what is missing."""

from __future__ import annotations

import sys

import pytest

from spojka.core.errors import ConfigError
from spojka.localsystems import bottlecrm

pytestmark = pytest.mark.crm


def test_a_machine_without_python_3_12_gets_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only Spojka's own 3.11 is offered: BottleCRM must refuse it and say what to install.
    monkeypatch.setattr(bottlecrm, "python_candidates", lambda: [sys.executable])
    with pytest.raises(ConfigError) as missing:
        bottlecrm.find_python()
    message = missing.value.message
    assert "needs Python >= 3.12" in message
    assert "SPOJKA_BOTTLECRM_PYTHON" in message
    assert f"{sys.executable} (3.11)" in message


def test_an_explicit_interpreter_is_tried_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOJKA_BOTTLECRM_PYTHON", "/nonexistent/python3.12")
    assert bottlecrm.python_candidates()[0] == "/nonexistent/python3.12"
    # A path that does not run is skipped, not fatal, when a real 3.12+ exists.
    assert bottlecrm.find_python() != "/nonexistent/python3.12"


def test_ico_is_refused_not_dropped_where_bottlecrm_lacks_the_custom_field() -> None:
    import httpx

    from spojka.connectors.bottlecrm.connector import BottleCRMConnector
    from spojka.core.errors import PermanentError

    with bottlecrm.start() as crm:
        admin = {"Authorization": f"Bearer {crm.org_token}"}
        definitions = httpx.get(f"{crm.url}/api/custom-fields/", headers=admin).json()
        for definition in definitions["definitions"]:
            httpx.delete(f"{crm.url}/api/custom-fields/{definition['id']}/", headers=admin)
        connector = BottleCRMConnector({"url": crm.url, "token": crm.personal_token})
        with pytest.raises(PermanentError, match="no Account custom field 'ico'"):
            connector.write(
                connector.stream("accounts"),
                {"name": "Sklárny Karolinka a.s.", "ico": "25596641"},
                external_id=None,
                idempotency_key="ico-without-field",
            )
        connector.close()
