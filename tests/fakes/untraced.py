"""moto answers without coverage's tracer.

Coverage measures only the project's packages, but its tracer still sees every line that runs
in the process, moto's included (about three times slower there, tried on a plain loop).
moto answers in the tests' own processes (`mock_aws`, and the threaded moto servers), and
answering is most of what an ECS or CloudWatch call costs. `answer_untraced()` wraps moto's two
entries so the tracer is off while moto works and on again once it returns, on that thread
only: nothing of the project runs inside them, so the coverage figures are the same
(`tests/bot/test_canary.py` and `test_rollback.py`, one process: 6,256 and 6,258 lines missed
of 15,222, CPU 34.5 s -> 30.4 s). Without coverage it changes nothing.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from moto.core.botocore_stubber import BotocoreStubber
from moto.core.models import MockAWS
from moto.moto_server.werkzeug_app import DomainDispatcherApplication


def untraced(answer: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(answer)
    def answered(*args: Any, **kwargs: Any) -> Any:
        tracer = sys.gettrace()
        if tracer is None:
            return answer(*args, **kwargs)
        sys.settrace(None)
        try:
            return answer(*args, **kwargs)
        finally:
            sys.settrace(tracer)

    return answered


def answer_untraced() -> None:
    """Once per process: `mock_aws`'s answers and the moto server's, and `mock_aws` starting
    and stopping (its patching, about 10 ms a test), untraced."""
    BotocoreStubber.__call__ = untraced(BotocoreStubber.__call__)  # type: ignore[method-assign]
    DomainDispatcherApplication.__call__ = untraced(DomainDispatcherApplication.__call__)  # type: ignore[method-assign]
    MockAWS.start = untraced(MockAWS.start)  # type: ignore[method-assign]
    MockAWS.stop = untraced(MockAWS.stop)  # type: ignore[method-assign]
