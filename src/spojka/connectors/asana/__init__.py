"""Asana over REST 1.0 (contract-tested against Asana's OpenAPI document)."""
