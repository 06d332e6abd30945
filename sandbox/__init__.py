"""Local stand-ins for the services the bot talks to, for tests and a browser sandbox.

Nothing here imports `bot`, `commands`, `pipeline` or `store`: a sandbox plays the outside world.
"""

from __future__ import annotations

__all__: list[str] = []
