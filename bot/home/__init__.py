"""The App Home tab: its Block Kit view (`views`) and its publishing (`tabs`)."""

from __future__ import annotations

from bot.home.tabs import HomeTabs
from bot.home.views import home_view

__all__ = ["HomeTabs", "home_view"]
