"""Durable runtime: workflows, steps, queues and human decisions (DBOS under the hood)."""

from spojka.runtime.flows import FlowResult, await_decision, flow, signal_decision, step
from spojka.runtime.models import Outcome

__all__ = ["FlowResult", "Outcome", "await_decision", "flow", "signal_decision", "step"]
