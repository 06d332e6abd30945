"""IAM's `SimulatePrincipalPolicy` on 127.0.0.1, which moto does not offer.

It speaks IAM's Query protocol as AWS does (a form-encoded POST with `Action`, `Version`,
`PolicySourceArn` and `ActionNames.member.N`; an XML answer in IAM's namespace) so botocore's own
parser reads it, and the doctor is tested through the real client pointed at it with
`AWS_ENDPOINT_URL_IAM`. Every action is allowed but those in `denied`; `asked` keeps each call's
principal and actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.test_utils import TestServer

_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


@dataclass
class FakeIamSimulator:
    denied: set[str] = field(default_factory=set)
    asked: list[tuple[str, list[str]]] = field(default_factory=list)
    _server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/"))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("Action") != "SimulatePrincipalPolicy":
            return _error(400, "InvalidAction", f"Could not find operation {form.get('Action')}")
        principal = str(form.get("PolicySourceArn", ""))
        actions = [str(v) for k, v in sorted(form.items(), key=_member_order) if _member(k)]
        if not principal or not actions:
            return _error(400, "ValidationError", "PolicySourceArn and ActionNames are required")
        self.asked.append((principal, actions))
        results = "".join(
            "<member>"
            f"<EvalActionName>{escape(a)}</EvalActionName>"
            "<EvalResourceName>*</EvalResourceName>"
            f"<EvalDecision>{'implicitDeny' if a in self.denied else 'allowed'}</EvalDecision>"
            "</member>"
            for a in actions
        )
        body = (
            f'<SimulatePrincipalPolicyResponse xmlns="{_NS}">'
            "<SimulatePrincipalPolicyResult>"
            f"<IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults>"
            "</SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        )
        return web.Response(text=body, content_type="text/xml")


def _member(key: str) -> bool:
    return key.startswith("ActionNames.member.")


def _member_order(item: tuple[str, object]) -> tuple[int, str]:
    key = item[0]
    return (int(key.rsplit(".", 1)[1]), key) if _member(key) else (0, key)


def _error(status: int, code: str, message: str) -> web.Response:
    body = (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>fake-iam</RequestId>"
        "</ErrorResponse>"
    )
    return web.Response(status=status, text=body, content_type="text/xml")
