"""When a connection with a polling interval is due, and which slot its poll belongs to."""

from datetime import UTC, datetime, timedelta

from spojka.sync.schedule import (
    BACKOFF_CAP_S,
    is_due,
    is_idle,
    next_poll_at,
    poll_delay,
    poll_workflow_id,
    slot_start,
)

NOW = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)


def test_never_polled_is_due_now() -> None:
    assert next_poll_at(interval_s=60, last_poll_at=None) is None
    assert is_due(now=NOW, interval_s=60, last_poll_at=None)


def test_due_once_the_last_poll_is_older_than_the_interval() -> None:
    assert not is_due(now=NOW, interval_s=60, last_poll_at=NOW - timedelta(seconds=59))
    assert is_due(now=NOW, interval_s=60, last_poll_at=NOW - timedelta(seconds=60))
    assert next_poll_at(interval_s=60, last_poll_at=NOW) == NOW + timedelta(seconds=60)


def test_a_naive_time_from_sqlite_counts_as_utc() -> None:
    naive = (NOW - timedelta(seconds=61)).replace(tzinfo=None)
    assert is_due(now=NOW, interval_s=60, last_poll_at=naive)


def test_consecutive_failures_stretch_the_wait_up_to_the_cap() -> None:
    assert poll_delay(60, 0) == 60
    assert poll_delay(60, 1) == 60  # the first failure: tried again in the next slot
    assert poll_delay(60, 2) == 120
    assert poll_delay(60, 3) == 240
    assert poll_delay(60, 20) == BACKOFF_CAP_S
    assert poll_delay(3600, 5) == 3600  # never shorter than the interval
    last = NOW - timedelta(seconds=100)
    assert is_due(now=NOW, interval_s=60, last_poll_at=last, failures=1)
    assert not is_due(now=NOW, interval_s=60, last_poll_at=last, failures=2)


def test_every_moment_of_one_slot_gives_the_same_workflow_id() -> None:
    start = slot_start(NOW, 60)
    assert start == datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
    assert slot_start(start + timedelta(seconds=59.9), 60) == start
    assert slot_start(start + timedelta(seconds=60), 60) == start + timedelta(seconds=60)
    assert poll_workflow_id("crm", start) == "sync.poll:crm:2026-11-24T10:00:00.000Z"
    assert poll_workflow_id("crm", slot_start(NOW, 1.5)) == "sync.poll:crm:2026-11-24T10:00:30.000Z"
    assert poll_workflow_id("crm", start) != poll_workflow_id("erp", start)


def test_a_poll_is_idle_only_when_it_changed_nothing() -> None:
    quiet = {
        "streams": {"accounts": {"records": 20, "created": 0, "changed": 0, "conflicts": 0}},
        "deliveries": {"erp": {"delivered": 0, "retried": 0, "dead_lettered": 0}},
    }
    assert is_idle(quiet)
    assert not is_idle(None) and not is_idle({})
    for where, key in [("streams", "created"), ("streams", "changed"), ("streams", "conflicts")]:
        busy = {**quiet, where: {"accounts": {**quiet[where]["accounts"], key: 1}}}
        assert not is_idle(busy), key
    sent = {**quiet, "deliveries": {"erp": {"delivered": 3}}}
    assert not is_idle(sent)
