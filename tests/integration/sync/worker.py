"""A sync worker process for the crash test (``python -m tests.integration.sync.worker``)."""

from __future__ import annotations

import sys

from spojka.core.db import make_engine
from spojka.sync.engine import SyncEngine
from tests.integration.sync.target import register

if __name__ == "__main__":
    register()
    engine = SyncEngine(make_engine(sys.argv[1]))
    engine.run(sys.argv[2])
    engine.close()
