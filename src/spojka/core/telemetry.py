"""OpenTelemetry export of request spans when ``SPOJKA_OTLP_ENDPOINT`` is set."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_provider: TracerProvider | None = None
_propagator = TraceContextTextMapPropagator()


def configure(endpoint: str | None, *, service_name: str = "spojka") -> TracerProvider | None:
    """Export spans to ``endpoint`` (OTLP/HTTP, e.g. http://collector:4318); None turns it off."""
    global _provider
    if not endpoint:
        return None
    if _provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        url = endpoint.rstrip("/")
        url = url if url.endswith("/v1/traces") else f"{url}/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        _provider = provider
    return _provider


def enabled() -> bool:
    return _provider is not None


def reset() -> None:
    """Stop exporting (flushes what is pending)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def flush() -> None:
    if _provider is not None:
        _provider.force_flush()


@contextmanager
def server_span(name: str, headers: Mapping[str, str]) -> Iterator[str | None]:
    """A span for a request, continuing the caller's ``traceparent``; yields its trace id."""
    if _provider is None:
        yield None
        return
    context = _propagator.extract(dict(headers))
    tracer = _provider.get_tracer("spojka")
    with tracer.start_as_current_span(name, context=context, kind=trace.SpanKind.SERVER) as span:
        yield format(span.get_span_context().trace_id, "032x")
