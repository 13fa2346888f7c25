import random

from spojka.sync import rules
from spojka.sync.rules import OwnershipPolicy, merge_change


def test_versions_compare_by_value_not_text() -> None:
    assert rules.is_newer("10", "9")
    assert not rules.is_newer("9", "10")
    assert rules.is_newer("2026-01-02T10:00:00", "2026-01-02T09:59:59")
    assert not rules.is_newer("2026-01-02T10:00:00+01:00", "2026-01-02T09:30:00Z")
    assert rules.is_newer("5", None)


def test_overlap_window_moves_cursor_back() -> None:
    since = rules.cursor_since("2026-01-02T10:00:00", cursor_type="datetime", overlap_s=300)
    assert since == "2026-01-02T09:55:00"
    assert rules.cursor_since("100", cursor_type="int", overlap_s=5) == "95"
    assert rules.cursor_since(None, cursor_type="datetime", overlap_s=300) is None


def test_idempotency_key_is_stable_per_event_and_step() -> None:
    a = rules.idempotency_key("crm:firmy:7:v3", "deliver:erp")
    assert a == rules.idempotency_key("crm:firmy:7:v3", "deliver:erp")
    assert a != rules.idempotency_key("crm:firmy:7:v3", "deliver:pm")
    assert a != rules.idempotency_key("crm:firmy:7:v4", "deliver:erp")


def test_content_hash_ignores_key_order() -> None:
    assert rules.content_hash({"a": 1, "b": "x"}) == rules.content_hash({"b": "x", "a": 1})


def test_backoff_grows_is_jittered_and_honours_retry_after() -> None:
    rand = random.Random(1)
    delays = [rules.backoff_delay(n, base_s=1, cap_s=60, rand=rand) for n in range(1, 8)]
    assert all(
        0.5 * min(60, 2 ** (n - 1)) <= d <= min(60, 2 ** (n - 1))
        for n, d in zip(range(1, 8), delays, strict=True)
    )
    assert rules.backoff_delay(1, base_s=1, cap_s=60, retry_after=30, rand=rand) >= 30
    assert (
        rules.backoff_delay(
            1, base_s=1, cap_s=60, retry_after=10_000, max_retry_after_s=120, rand=rand
        )
        == 120
    )


POLICY = OwnershipPolicy(
    owners={("Account", "*"): "crm", ("Account", "credit_limit"): "erp", ("Task", "status"): "pm"},
    on_violation={("Task", "status"): "reject"},
)


def test_owner_change_applies() -> None:
    result = merge_change(
        entity="Account",
        system="crm",
        base=None,
        current={"name": "A", "ico": "1"},
        incoming={"name": "B", "ico": "1"},
        policy=POLICY,
    )
    assert result.data["name"] == "B" and result.changed == ["name"] and not result.issues


def test_non_owner_change_is_a_conflict_by_default() -> None:
    result = merge_change(
        entity="Account",
        system="erp",
        base=None,
        current={"name": "A"},
        incoming={"name": "B"},
        policy=POLICY,
    )
    assert result.data["name"] == "A"
    assert [(i.kind, i.action) for i in result.issues] == [("non_owner", "conflict")]


def test_field_owner_overrides_entity_owner() -> None:
    result = merge_change(
        entity="Account",
        system="erp",
        base=None,
        current={"credit_limit": 1},
        incoming={"credit_limit": 2},
        policy=POLICY,
    )
    assert result.data["credit_limit"] == 2


def test_non_owner_can_be_rejected_by_configuration() -> None:
    result = merge_change(
        entity="Task",
        system="crm",
        base=None,
        current={"status": "new"},
        incoming={"status": "done"},
        policy=POLICY,
    )
    assert result.issues[0].action == "reject" and result.data["status"] == "new"


def test_concurrent_edit_of_one_field_is_a_conflict() -> None:
    # both sides changed `name` since the system last saw version with name "A"
    result = merge_change(
        entity="Project",
        system="pm",
        base={"name": "A", "budget": 1},
        current={"name": "B", "budget": 1},
        incoming={"name": "C", "budget": 2},
        policy=POLICY,
    )
    assert [i.field for i in result.issues] == ["name"]
    assert result.data == {"name": "B", "budget": 2}


def test_stale_value_from_a_system_does_not_undo_a_newer_change() -> None:
    result = merge_change(
        entity="Project",
        system="pm",
        base={"name": "A"},
        current={"name": "B"},
        incoming={"name": "A"},
        policy=POLICY,
    )
    assert result.data == {"name": "B"} and not result.issues and not result.changed


def test_token_bucket_refills_at_the_rate_and_caps_at_burst() -> None:
    ok, left, wait = rules.take_token(
        tokens=0.0, updated_at=100.0, now=100.0, rate_per_s=2, burst=5
    )
    assert (ok, left, wait) == (False, 0.0, 0.5)
    ok, left, _ = rules.take_token(tokens=0.0, updated_at=100.0, now=101.0, rate_per_s=2, burst=5)
    assert ok and left == 1.0
    ok, left, _ = rules.take_token(tokens=4.0, updated_at=0.0, now=1000.0, rate_per_s=2, burst=5)
    assert ok and left == 4.0  # never more than the burst


def test_newest_of_many_cursor_values() -> None:
    assert (
        rules.newest(["2026-01-02T10:00:00", "2026-01-10T09:00:00", "2026-01-09T23:59:59"])
        == "2026-01-10T09:00:00"
    )
    assert rules.newest(["9", "10", "8"]) == "10"
    assert (
        rules.newest(["2026-01-02T10:00:00+01:00", "2026-01-02T09:30:00+00:00"])
        == "2026-01-02T09:30:00+00:00"
    )
    assert rules.newest([]) is None
