"""The base of every value the store returns: a pydantic model, immutable once read."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Base of every stored domain value: immutable once read."""

    model_config = ConfigDict(frozen=True)
