"""Jira Cloud over REST v3 (contract-tested against Atlassian's OpenAPI document)."""
