"""Xero Accounting over REST 2.0 (contract-tested against Xero's OpenAPI document)."""
