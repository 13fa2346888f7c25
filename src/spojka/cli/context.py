"""What CLI commands share: the bootstrapped instance and a console."""

from __future__ import annotations

import sys

from rich.console import Console

from spojka.bootstrap import Spojka, bootstrap

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def instance(*, migrate: bool = False, create_key: bool = False) -> Spojka:
    """Bootstrap from the environment; CLI logs go to stderr as JSON only on warnings."""
    from spojka.core.settings import load_settings

    settings = load_settings()
    app = bootstrap(settings, migrate=migrate, create_key=create_key, configure_logs=False)
    from spojka.core.logging import configure_logging

    configure_logging("warning", settings.log_format)
    return app
