"""The one dispatcher: every slash command, button and form goes through it (and the one
event the bot takes, the App Home being opened).

For each request it acknowledges Slack in time, calls the command's handler, renders the
`Outcome` (the private reply, the cards to redraw, the form to open, the form's errors), turns
any error into one clear private message, and writes exactly one audit row. A click on the App
Home has no channel: its reply goes on the clicker's Home; after every request the Homes are
told that something may have changed. A failure on a
system's side (AWS, Slack, the database, a bug) gets a reference id that is also in the log.
A request whose work goes on after the ack is journaled first (`store.requests.OpenRequests`);
at start-up, `recover_interrupted` audits and answers the ones a crash cut short.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackClientError

from bot.blocks import Blocks, message_text
from bot.deploy.adapter import SlackNotifier
from bot.home import HomeTabs
from bot.mrkdwn import escape, render
from bot.payloads import click as parse_click
from bot.payloads import home_opener, invocation, submission
from bot.render import form_view, reply_message
from bot.slack import SlackGateway, slack_failure
from commands.exchange import Answer, Click, Invocation, Later, Outcome, Submission
from commands.replies import Form
from pipeline.kernel.errors import ChatOpsError
from pipeline.kernel.ports import Clock
from pipeline.kernel.text import Line, line
from store.audit import AuditEntry, AuditLog
from store.db import StoreError
from store.requests import OpenRequests

log = logging.getLogger(__name__)

CommandHandler = Callable[[Invocation], Awaitable[Answer]]
ClickHandler = Callable[[Click], Awaitable[Outcome]]
FormHandler = Callable[[Submission], Awaitable[Answer]]


@dataclass(frozen=True)
class Said:
    """An error as the person reads it (mrkdwn) and as the audit log keeps it."""

    text: str
    audit: str


def new_ref() -> str:
    return secrets.token_hex(3)


def _leaf(exc: BaseException) -> BaseException:
    """The error to tell about in an exception group (concurrent work): the first of ours,
    else the first of any kind."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    ours = exc.subgroup(ChatOpsError)
    return _leaf((ours or exc).exceptions[0])


def explain(exc: BaseException) -> Said:
    """Any error as one private message; a failure on a system's side gets a logged reference."""
    exc = _leaf(exc)
    if isinstance(exc, SlackClientError):
        exc = slack_failure(exc, "answer you")
    if isinstance(exc, ChatOpsError) and not exc.failure:
        return Said(render(exc.line), f"refused: {exc.user_message}")
    ref = new_ref()
    if isinstance(exc, ChatOpsError):
        log.warning(
            "%s (ref %s)", exc.user_message, ref, exc_info=exc.__cause__, extra={"ref": ref}
        )
        return Said(f"{render(exc.line)} (ref `{ref}`)", f"failed: {exc.user_message} (ref {ref})")
    if isinstance(exc, StoreError):
        log.error("database error (ref %s)", ref, exc_info=exc, extra={"ref": ref})
        return Said(
            f"The bot's database did not answer, so I could not finish this (ref `{ref}`). "
            "Try again in a minute; if it keeps failing, the bot's operators can find the "
            "reference in its log.",
            f"failed: database error (ref {ref})",
        )
    log.error("unhandled error (ref %s)", ref, exc_info=exc, extra={"ref": ref})
    return Said(
        f"Something went wrong on our side (ref `{ref}`). Check the result before trying again.",
        f"failed: internal error (ref {ref})",
    )


class Dispatcher:
    """Registers listeners on the Bolt app; see the module docstring for what each one does."""

    def __init__(
        self,
        *,
        slack: SlackGateway,
        notifier: SlackNotifier,
        audit: AuditLog,
        journal: OpenRequests,
        clock: Clock,
        home: HomeTabs | None = None,
    ) -> None:
        self._home = home
        self._slack = slack
        self._notifier = notifier
        self._audit = audit
        self._journal = journal
        self._clock = clock

    # -- registration ----------------------------------------------------------------------

    def command(self, app: AsyncApp, name: str, handler: CommandHandler) -> None:
        async def listener(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
            trigger_id = command.get("trigger_id")
            await self._command(ack, respond, invocation(command), handler, trigger_id=trigger_id)

        app.command(name)(listener)

    def action(
        self, app: AsyncApp, action_id: str | re.Pattern[str], verb: str, handler: ClickHandler
    ) -> None:
        async def listener(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await self._click(ack, respond, body, verb, handler)

        app.action(action_id)(listener)

    def home_opened(self, app: AsyncApp, handler: Callable[[str, bool], Awaitable[None]]) -> None:
        """The Events API's `app_home_opened`: `handler` gets who opened the Home tab, and
        whether Slack still shows them a Home the bot published (the event carries it). Bolt
        acknowledges events itself; opening a tab changes nothing, so nothing is said or
        audited, and an error is only logged (with its reference)."""

        async def listener(event: dict[str, Any]) -> None:
            user = home_opener(event)
            try:
                if user is not None:
                    await handler(user, "view" in event)
            except Exception as exc:  # noqa: BLE001 - logged once with its reference
                explain(exc)

        app.event("app_home_opened")(listener)

    def view(self, app: AsyncApp, callback_id: str, verb: str, handler: FormHandler) -> None:
        async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._form(ack, submission(body), verb, handler)

        app.view(callback_id)(listener)

    # -- the three kinds of request ----------------------------------------------------------

    async def _command(
        self,
        ack: AsyncAck,
        respond: AsyncRespond,
        inv: Invocation,
        handler: CommandHandler,
        *,
        trigger_id: str | None = None,
    ) -> None:
        typed = f"\nYou typed `{escape(inv.typed)}`."
        try:
            answer = await handler(inv)
        except Exception as exc:  # noqa: BLE001 - every error becomes one private message
            said = explain(exc)
            await ack(text=message_text(said.text + typed), response_type="ephemeral")
            await self._record(inv.user_id, inv.typed, inv.channel_id, said.audit, None)
            return
        if isinstance(answer, Outcome) and answer.form is not None:
            # A command that opens a form (a modal): ack at once, open it with the command's
            # trigger (Slack honours it for 3 s); a failure to open it is said privately.
            await ack()
            outcome = await self._open_form(answer, answer.form, trigger_id=trigger_id)
            await self._finish(
                outcome, inv.user_id, inv.typed, inv.channel_id, respond=respond, typed=typed
            )
            return
        if isinstance(answer, Outcome):
            reply = self._reply_of(answer, typed)
            if reply is None:
                await ack()
            elif answer.announce and answer.error is None:
                await ack()
                await self._announce(inv, reply, respond=respond)
            else:
                text, blocks = reply
                await ack(text=text, blocks=blocks, response_type="ephemeral")
            await self._finish(answer, inv.user_id, inv.typed, inv.channel_id, respond=None)
            return
        journal_id = await self._open(inv.user_id, inv.typed, inv.channel_id, answer.ref)
        await ack()
        outcome = await self._later(answer)
        await self._finish(
            outcome,
            inv.user_id,
            inv.typed,
            inv.channel_id,
            respond=respond,
            typed=typed,
            journal_id=journal_id,
        )

    async def _click(
        self,
        ack: AsyncAck,
        respond: AsyncRespond,
        body: dict[str, Any],
        verb: str,
        handler: ClickHandler,
    ) -> None:
        press = parse_click(body)
        # A click on the App Home has no channel or response_url: it is answered on the Home.
        on_home = (body.get("view") or {}).get("type") == "home" and press.channel_id is None
        action = f"click {verb} {press.value}"
        journal_id = await self._open(press.user_id, action, press.channel_id, None)
        await ack()
        try:
            outcome = await handler(press)
        except Exception as exc:  # noqa: BLE001 - every error becomes one private message
            outcome = Outcome(error=exc)
        if outcome.form is not None:
            outcome = await self._open_form(
                outcome, outcome.form, trigger_id=body.get("trigger_id")
            )
        await self._finish(
            outcome,
            press.user_id,
            action,
            press.channel_id,
            respond=None if on_home else respond,
            journal_id=journal_id,
            on_home=on_home,
        )

    async def _form(self, ack: AsyncAck, form: Submission, verb: str, handler: FormHandler) -> None:
        action = f"submit {verb} {form.subject}"
        try:
            answer = await handler(form)
        except Exception as exc:  # noqa: BLE001 - every error becomes one private message
            answer = Outcome(error=exc)
        if isinstance(answer, Outcome) and answer.form_errors:
            await ack(response_action="errors", errors=dict(answer.form_errors))
            audit = answer.audit
            if audit == "ok":
                audit = "refused: " + "; ".join(answer.form_errors.values())
            await self._record(form.user_id, action, form.channel_id, audit, answer.ref)
            return
        journal_id = None
        if isinstance(answer, Later):
            journal_id = await self._open(form.user_id, action, form.channel_id, answer.ref)
        await ack()
        outcome = answer if isinstance(answer, Outcome) else await self._later(answer)
        await self._finish(
            outcome,
            form.user_id,
            action,
            form.channel_id,
            respond=None,
            tell_in=form.channel_id,
            journal_id=journal_id,
        )

    # -- rendering an outcome -----------------------------------------------------------------

    async def _later(self, later: Later) -> Outcome:
        try:
            return await later.then()
        except Exception as exc:  # noqa: BLE001 - every error becomes one private message
            return Outcome(error=exc)

    async def _open_form(self, outcome: Outcome, form: Form, *, trigger_id: str | None) -> Outcome:
        try:
            await self._slack.call(
                "open the form",
                self._slack.client.views_open(trigger_id=trigger_id or "", view=form_view(form)),
            )
        except ChatOpsError as exc:
            return Outcome(error=exc, ref=outcome.ref)
        return outcome

    def _reply_of(self, outcome: Outcome, typed: str) -> tuple[str, Blocks | None] | None:
        if outcome.error is not None:
            return message_text(explain(outcome.error).text + typed), None
        return reply_message(outcome.reply) if outcome.reply is not None else None

    async def _finish(
        self,
        outcome: Outcome,
        user_id: str,
        action: str,
        channel_id: str | None,
        *,
        respond: AsyncRespond | None,
        typed: str = "",
        tell_in: str | None = None,
        journal_id: int | None = None,
        on_home: bool = False,
    ) -> None:
        """Say what there is to say (if not said in the ack), redraw cards, audit once; the
        App Homes are redrawn too, since most requests change what they show."""
        audit = outcome.audit
        message: tuple[str, Blocks | None] | None = None
        if outcome.error is not None:
            said = explain(outcome.error)
            message, audit = (message_text(said.text + typed), None), said.audit
        elif outcome.reply is not None:
            message = reply_message(outcome.reply)
        if message is not None and on_home and self._home is not None:
            try:
                await self._home.tell(user_id, message[0])
            except Exception:
                # The audit row below is owed whatever the Home could not say.
                log.warning("could not answer %s on their App Home", user_id, exc_info=True)
        elif message is not None and (respond is not None or tell_in is not None):
            await self._tell(
                user_id,
                message,
                respond=respond,
                channel_id=tell_in,
                replace=outcome.replace and outcome.error is None,
                announce=outcome.announce and outcome.error is None,
            )
        for run in outcome.cards:
            try:
                await self._notifier.redraw(run)
            except Exception:
                log.warning("could not redraw the card of %s", run.id, exc_info=True)
        await self._record(user_id, action, channel_id, audit, outcome.ref, journal_id=journal_id)
        if self._home is not None:
            self._home.changed()

    async def _announce(
        self, inv: Invocation, message: tuple[str, Blocks | None], *, respond: AsyncRespond
    ) -> None:
        """Say a command's answer to the channel where it was typed, as a message of its own
        (a lock is everyone's business there). When the bot cannot post there, the person is
        told privately, with the reason."""
        text, blocks = message
        try:
            await self._slack.post(
                "tell the channel", channel=inv.channel_id, text=text, blocks=blocks
            )
        except ChatOpsError as exc:
            note = f"{text}\n_Only you see this: {exc.user_message}_"
            await self._tell(inv.user_id, (note, None), respond=respond, channel_id=None)

    async def _tell(
        self,
        user_id: str,
        message: tuple[str, Blocks | None],
        *,
        respond: AsyncRespond | None,
        channel_id: str | None,
        replace: bool = False,
        announce: bool = False,
    ) -> None:
        text, blocks = message
        try:
            if respond is not None:
                await respond(
                    text=text,
                    blocks=blocks,
                    response_type="in_channel" if announce else "ephemeral",
                    replace_original=replace,
                )
            elif channel_id is not None:
                await self._slack.post_ephemeral(
                    channel=channel_id, user=user_id, text=text, blocks=blocks
                )
            else:
                await self._slack.post("write to you", channel=user_id, text=text, blocks=blocks)
        except Exception:
            log.warning("could not tell %s: %s", user_id, text, exc_info=True)

    async def _record(
        self,
        user_id: str,
        action: str,
        channel_id: str | None,
        outcome: str,
        ref: str | None,
        *,
        journal_id: int | None = None,
    ) -> None:
        entry = AuditEntry(
            at=self._clock.now(),
            actor=user_id,
            action=action,
            outcome=outcome,
            channel_id=channel_id,
            detail=ref,
        )
        try:
            if journal_id is None:
                await self._audit.record(entry)
            else:
                await self._journal.finish(journal_id, entry)
        except Exception:
            log.error("could not write the audit row %s", entry.model_dump_json(), exc_info=True)

    # -- requests a crash cut short ------------------------------------------------------------

    async def _open(
        self, user_id: str, action: str, channel_id: str | None, ref: str | None
    ) -> int | None:
        """Journal a request whose work goes on after the ack, so a crash cannot lose it."""
        try:
            return await self._journal.open(
                at=self._clock.now(), actor=user_id, action=action, channel_id=channel_id, ref=ref
            )
        except Exception:
            log.error("could not journal %s by %s", action, user_id, exc_info=True)
            return None

    async def recover_interrupted(
        self, has_record: Callable[[str], Awaitable[bool]], *, replicas: list[str] | None = None
    ) -> int:
        """At start-up (and when a replica's presence lapsed): every request a crash cut short
        gets its audit row and, unless the record it was creating exists (that record's
        recovery speaks for it), a private word to its sender. With `replicas`, only the
        requests those replicas took. Closing the request comes first, so two replicas that
        both find it speak once. Returns how many there were."""
        left = await self._journal.left_open(replicas=replicas)
        closed = 0
        for entry in left:
            recorded = entry.ref is not None and await has_record(entry.ref)
            audit = AuditEntry(
                at=self._clock.now(),
                actor=entry.actor,
                action=entry.action,
                outcome="interrupted: the bot restarted before this finished",
                channel_id=entry.channel_id,
                detail=entry.ref,
            )
            try:
                if not await self._journal.finish(entry.id, audit):
                    continue  # another replica closed it
            except Exception:
                log.error(
                    "could not write the audit row %s", audit.model_dump_json(), exc_info=True
                )
                continue
            closed += 1
            if not recorded:
                await self._tell(
                    entry.actor,
                    (
                        render(_interrupted(entry.action, created_nothing=entry.ref is not None)),
                        None,
                    ),
                    respond=None,
                    channel_id=entry.channel_id,
                )
        if closed:
            log.warning("%d request(s) were cut short by a restart", closed)
        return closed


def _interrupted(action: str, *, created_nothing: bool) -> Line:
    if created_nothing:
        return line(
            "The bot restarted before it finished `{action}`, so nothing was recorded or "
            "changed. Send it again.",
            action=action,
        )
    return line(
        "The bot restarted while it was handling `{action}`, so it may not have finished. "
        "Check its result before trying again.",
        action=action,
    )
