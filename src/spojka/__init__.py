"""Spojka — a self-hosted hub that links CRM, ERP and project-management systems."""

__version__ = "0.1.0"
