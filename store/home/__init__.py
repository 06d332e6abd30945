"""The App Home's rows: who opened the bot's Home tab, and what it last showed each of them."""

from __future__ import annotations

from store.home.viewers import HomeViewer, HomeViewers

__all__ = ["HomeViewer", "HomeViewers"]
