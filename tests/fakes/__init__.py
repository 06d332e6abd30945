"""Test doubles that speak the real protocols: Slack Web API, health endpoints, the clock."""
