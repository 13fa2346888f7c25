"""Redmine 5 over REST: projects, versions, issues, time entries, users and memberships."""
