"""Raw Slack payloads stop here: turned into the plain requests of `commands/exchange.py`."""

from __future__ import annotations

from typing import Any

from commands.exchange import Click, Invocation, Submission, read_form_metadata

# Every form input's action_id; the block_id names the field (see bot/incident/views.py).
FIELD = "value"


def invocation(command: dict[str, Any]) -> Invocation:
    return Invocation(
        command=str(command.get("command", "")),
        text=str(command.get("text") or ""),
        user_id=str(command["user_id"]),
        channel_id=str(command.get("channel_id") or ""),
    )


def click(body: dict[str, Any]) -> Click:
    action = (body.get("actions") or [{}])[0]
    return Click(
        action_id=str(action.get("action_id", "")),
        value=str(action.get("value", "")),
        user_id=str(body["user"]["id"]),
        channel_id=(body.get("channel") or {}).get("id"),
        message_ts=(body.get("message") or {}).get("ts"),
    )


def home_opener(event: dict[str, Any]) -> str | None:
    """Who opened the app's Home tab (`app_home_opened`); None for its other tabs."""
    user = event.get("user")
    return str(user) if event.get("tab") == "home" and user else None


def submission(body: dict[str, Any]) -> Submission:
    view = body.get("view") or {}
    fields: dict[str, str] = {}
    choices: dict[str, tuple[str, ...]] = {}
    for block_id, inputs in ((view.get("state") or {}).get("values") or {}).items():
        value = (inputs or {}).get(FIELD) or {}
        if "selected_options" in value:
            picked = value.get("selected_options") or []
            choices[block_id] = tuple(str(o.get("value", "")) for o in picked)
            continue
        chosen = (value.get("selected_option") or {}).get("value")
        fields[block_id] = str(chosen if chosen is not None else value.get("value") or "")
    subject, channel = read_form_metadata(str(view.get("private_metadata") or ""))
    return Submission(
        callback_id=str(view.get("callback_id", "")),
        user_id=str(body["user"]["id"]),
        subject=subject,
        channel_id=channel,
        fields=fields,
        choices=choices,
    )
