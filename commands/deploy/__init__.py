"""`/deploy`: parse (text -> requests), use cases (request, approve), planning, pending requests
(expire, recover), the deployment record."""

from __future__ import annotations
