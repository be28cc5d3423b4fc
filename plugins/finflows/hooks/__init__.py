"""Hooks of our own, where a provider hook does not fit the servers counterparties run."""
