"""Apideck CRM unified API (contract-tested against Apideck's OpenAPI document)."""
