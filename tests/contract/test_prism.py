"""The Prism helper says clearly when a document cannot be served."""

from __future__ import annotations

from pathlib import Path

import pytest

from spojka.core.errors import ConfigError
from spojka.localsystems import prism

pytestmark = pytest.mark.contract


def test_a_document_prism_cannot_load_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "rozbity.json"
    broken.write_text('{"openapi": "3.0.0", "paths": {"/x": {"get": {"responses": ')
    with pytest.raises(ConfigError, match=r"Prism could not serve rozbity\.json") as caught:
        prism.start(str(broken), timeout=60)
    assert "Error parsing" in str(caught.value)
    assert "Positionals" not in str(caught.value)  # the reason, not Prism's usage text


def test_every_vendor_document_is_in_the_directory() -> None:
    for kind in prism.VENDOR_SPECS:
        assert prism.spec_path(kind).stat().st_size > 10_000
