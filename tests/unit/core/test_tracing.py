from spojka.core import tracing


def test_valid_traceparent_gives_its_trace_id():
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert tracing.parse_traceparent(header) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_malformed_or_zero_traceparent_is_ignored():
    assert tracing.parse_traceparent("garbage") is None
    assert tracing.parse_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert tracing.parse_traceparent(None) is None


def test_outgoing_calls_carry_the_current_trace():
    with tracing.trace_context("4bf92f3577b34da6a3ce929d0e0e4736"):
        header = tracing.outgoing_headers()["traceparent"]
    assert tracing.parse_traceparent(header) == "4bf92f3577b34da6a3ce929d0e0e4736"
