"""Run the built image once, as ECS would, against the local Slack: the bot starts as user 10001
from /etc/chatops/chatops.toml, answers GET /healthz, and answers a signed `/deploy help`.

    .venv/bin/python deploy/smoke-image.py [IMAGE]

Needs buildah (the container runs with chroot isolation on the host's network; no daemon) and
the dev venv (for the local Slack). Prints what it saw and exits non-zero when a step fails.
"""

# A one-shot script that drives buildah: blocking process calls in its event loop are fine here.
# ruff: noqa: ASYNC220, ASYNC221, ASYNC240, S603, S607

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.slack import LocalSlack  # noqa: E402

SECRET = "smoke-signing-secret"  # noqa: S105 - a throwaway secret for a local run
STORAGE = ["--storage-driver", "vfs"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def wait_healthy(base: str, bot: subprocess.Popen[bytes]) -> str:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if bot.poll() is not None:
                raise SystemExit(f"the bot exited with {bot.returncode} before it was healthy")
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return await r.text()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the bot did not answer /healthz within 60 s")


async def main(image: str) -> int:
    port = free_port()
    async with LocalSlack() as slack:
        conf = Path(tempfile.mkdtemp())
        shutil.copy(ROOT / "chatops.example.toml", conf / "chatops.toml")
        conf.chmod(0o755)
        (conf / "chatops.toml").chmod(0o644)
        ctr = subprocess.run(
            ["buildah", *STORAGE, "from", image], capture_output=True, text=True, check=True
        ).stdout.strip()
        env = {
            "SLACK_BOT_TOKEN": "xoxb-smoke",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": f"{slack.base}/api/",
            "PORT": str(port),
            "CHATOPS_HOST": "127.0.0.1",
        }
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        bot = subprocess.Popen(
            [
                "buildah",
                *STORAGE,
                "run",
                "--isolation",
                "chroot",
                "--user",
                "10001:10001",
                "-v",
                f"{conf}:/etc/chatops:ro",
                *env_args,
                ctr,
                "--",
                "/opt/chatops/bin/chatops-bot",
                "serve",
            ],
        )
        try:
            base = f"http://127.0.0.1:{port}"
            print(f"healthz: {await wait_healthy(base, bot)}")
            body = urllib.parse.urlencode(
                {
                    "command": "/deploy",
                    "text": "help",
                    "user_id": "U00SAM",
                    "channel_id": "C0DEPLOYS",
                    "team_id": "T0LOCAL",
                    "trigger_id": "1.2.3",
                    "response_url": slack.response_url("smoke", channel="C0DEPLOYS", user="U00SAM"),
                }
            )
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{base}/slack/events", data=body, headers=signed(body)) as r,
            ):
                answer = await r.text()
                print(f"/deploy help: HTTP {r.status}, {len(answer)} bytes")
                ok = r.status == 200
            for _ in range(100):
                if slack.responses or "Usage" in answer:
                    break
                await asyncio.sleep(0.1)
            said = answer + "".join(str(x) for x in slack.responses)
            ok = ok and "/deploy" in said
            print("the usage reached Slack" if ok else f"no usage in the answer: {said[:300]}")
            return 0 if ok else 1
        finally:
            bot.terminate()
            bot.wait(timeout=30)
            subprocess.run(["buildah", *STORAGE, "rm", ctr], capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "localhost/chatops-bot:0.1.0")))
