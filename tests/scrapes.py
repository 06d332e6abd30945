"""Reading `GET /metrics` as Prometheus does: over HTTP, parsed by prometheus_client's parser."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape_url(url: str) -> Samples:
    """Every sample of the scrape at `url`, by name and labels."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of every sample called `name`."""
    return [dict(labels) for (n, labels) in samples if n == name]
