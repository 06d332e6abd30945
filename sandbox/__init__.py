"""The sandbox: the real bot on this machine, against stand-ins for the services it talks to.

The stand-ins (`slack`, `web`, `aws`, `services`) play the outside world and import nothing of
`bot`, `commands`, `pipeline` or `store`; only `stack`, `cli` and `launch` run the real bot
among them. The test suite uses the same local Slack.
"""

from __future__ import annotations

__all__: list[str] = []
