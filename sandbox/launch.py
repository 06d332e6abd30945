"""What `make run` starts: the real bot when a Slack bot token is configured, else the sandbox.

The token counts when it is in the environment or in `.env`, where `chatops-bot serve` reads it.
It says which one it starts; arguments go to the sandbox (`make run ARGS=--port=8080`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot.main import main as bot_main
from sandbox.cli import main as cli_main
from sandbox.environment import bot_token_configured

SERVE = (
    "make run: SLACK_BOT_TOKEN is set (environment or .env): starting the real bot "
    "(chatops-bot serve)."
)
SANDBOX = (
    "make run: no SLACK_BOT_TOKEN in the environment or .env: starting the sandbox "
    "(chatops-bot sandbox). Set the Slack credentials to run the real bot (README.md)."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if bot_token_configured():
        print(SERVE, file=sys.stderr, flush=True)
        return bot_main(["serve"])
    print(SANDBOX, file=sys.stderr, flush=True)
    return cli_main(["sandbox", *args])


if __name__ == "__main__":
    sys.exit(main())
