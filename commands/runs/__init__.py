"""The life of a run, whichever feature asked for it: look one up, make a new request record,
publish it (its card and approval timer), start, cancel, expire, recover and redraw it.

Every feature that makes or touches runs (deploy, rollback, canary, gates) uses `Runs`
(`lifecycle.py`) and `new_request` (`records.py`) instead of another feature's use cases.
"""

from __future__ import annotations
