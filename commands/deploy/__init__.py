"""`/deploy`: parse (text -> requests), use cases (request, approve, the deployment record and
history), planning (the checks, targets and record of a deploy, or its dry run)."""

from __future__ import annotations
