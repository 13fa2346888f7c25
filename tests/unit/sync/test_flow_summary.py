from spojka.runtime.models import Outcome
from spojka.sync.engine import DeliveryReport, IngestStats, StreamReport
from spojka.sync.flows import summarize


def test_a_run_with_dead_letters_is_not_reported_as_automated() -> None:
    clean = {
        "streams": [StreamReport("crm", "firmy", records=3, stats=IngestStats(created=3))],
        "deliveries": [DeliveryReport("erp", delivered=3)],
    }
    outcome, detail = summarize(clean)
    assert outcome is Outcome.automated
    assert detail["streams"]["firmy"]["created"] == 3
    assert detail["deliveries"]["erp"]["delivered"] == 3
    poisoned = {"streams": clean["streams"], "deliveries": [DeliveryReport("erp", dead_lettered=1)]}
    assert summarize(poisoned)[0] is Outcome.dead_lettered
