"""The Redmine REST client against a real Redmine 5: auth, paging, faults, unicode."""

from __future__ import annotations

import secrets

import pytest

from spojka.connectors.redmine.client import RedmineClient
from spojka.core.errors import AuthError, TransientError, ValidationError
from spojka.localsystems.redmine import RedmineServer

pytestmark = pytest.mark.redmine


def _project(client: RedmineClient, name: str) -> dict[str, object]:
    return client.create_project(
        {"name": name, "identifier": f"p-{secrets.token_hex(4)}", "is_public": False}
    )


def test_wrong_api_key_says_exactly_what_is_wrong(redmine_server: RedmineServer) -> None:
    client = RedmineClient(redmine_server.url, "0" * 40)
    with client, pytest.raises(AuthError, match="401 from Redmine: API key rejected"):
        client.current_user()


def test_czech_and_slovak_diacritics_round_trip_unchanged(redmine_client: RedmineClient) -> None:
    project = _project(redmine_client, "Nákupní portál – Žilina")
    subject = "Úprava číselníku: ďábelské ódy, kôň, ľad, päť"
    issue = redmine_client.create_issue(
        {"project_id": project["id"], "subject": subject, "description": "Příliš žluťoučký kůň"}
    )
    redmine_client.add_note(issue["id"], "Poznámka: Ťažký úľ, čučoriedky")
    body = redmine_client.get(f"/issues/{issue['id']}.json", include="journals")["issue"]
    assert body["subject"] == subject
    assert body["description"] == "Příliš žluťoučký kůň"
    assert body["journals"][-1]["notes"] == "Poznámka: Ťažký úľ, čučoriedky"
    assert body["project"]["name"] == "Nákupní portál – Žilina"


def test_rejected_issue_carries_redmines_message(redmine_client: RedmineClient) -> None:
    project = _project(redmine_client, "Validace")
    with pytest.raises(ValidationError) as caught:
        redmine_client.create_issue({"project_id": project["id"], "subject": ""})
    assert "Subject cannot be blank" in caught.value.message
    assert caught.value.detail["errors"] == ["Subject cannot be blank"]


def test_paging_reads_every_issue_once_beyond_one_page(redmine_client: RedmineClient) -> None:
    project = _project(redmine_client, "Stránkování")
    ids = {
        redmine_client.create_issue({"project_id": project["id"], "subject": f"Úkol {i}"})["id"]
        for i in range(105)
    }
    seen = [
        issue["id"]
        for issue in redmine_client.iter_all(
            "/issues.json", "issues", project_id=project["id"], status_id="*", sort="id"
        )
    ]
    assert len(seen) == 105
    assert set(seen) == ids


def test_deleted_issue_is_found_by_listing_ids(redmine_client: RedmineClient) -> None:
    project = _project(redmine_client, "Mazání")
    first = redmine_client.create_issue({"project_id": project["id"], "subject": "Zůstane"})
    second = redmine_client.create_issue({"project_id": project["id"], "subject": "Zmizí"})

    def listed() -> set[int]:
        return {
            i["id"]
            for i in redmine_client.iter_all(
                "/issues.json", "issues", project_id=project["id"], status_id="*"
            )
        }

    before = listed()
    redmine_client.delete(f"/issues/{second['id']}.json")
    assert before - listed() == {second["id"]}
    assert first["id"] in listed()


def test_system_down_is_transient_and_work_resumes_after_restart(
    redmine_client: RedmineClient, redmine_server: RedmineServer
) -> None:
    redmine_server.kill()
    try:
        with pytest.raises(TransientError, match="unreachable"):
            redmine_client.current_user()
    finally:
        redmine_server.restart()
    assert redmine_client.current_user()["login"] == "admin"


def test_throttling_and_server_errors_are_transient_with_retry_after() -> None:
    """A reverse proxy in front of Redmine that throttles (429) or fails (503)."""
    import http.server
    import threading

    class Throttling(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 429 if "throttle" in self.path else 503
            self.send_response(status)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with RedmineClient(url, "key") as client:
            with pytest.raises(TransientError, match="429 from Redmine") as throttled:
                client.get("/throttle/issues.json")
            assert throttled.value.retry_after == 7.0
            with pytest.raises(TransientError, match="503 from Redmine") as failed:
                client.get("/issues.json")
            assert failed.value.retry_after == 7.0
    finally:
        server.shutdown()
        server.server_close()
