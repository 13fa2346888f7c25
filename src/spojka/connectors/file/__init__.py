"""File connector: CSV, XLSX and JSON-lines folders (import and export)."""

from spojka.connectors.file.connector import FileConnector

__all__ = ["FileConnector"]
