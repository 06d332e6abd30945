"""The fake Slack of the test suite: the product's strict local Slack (`sandbox.slack`).

Kept as a module so tests import `FakeSlack` and `Call` from where they always have.
"""

from __future__ import annotations

from sandbox.slack import Call
from sandbox.slack import LocalSlack as FakeSlack

__all__ = ["Call", "FakeSlack"]
