"""Shared plumbing: settings, database, logging, tracing, errors."""
