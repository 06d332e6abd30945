"""The shared kernel every floor uses: config models, error types, ports, the clock, message text.

Nothing in it does I/O except `config.load_config` (reads the file) and `clock.SystemClock`.
"""

from __future__ import annotations

__all__: list[str] = []
