"""Each research tier can answer with its own upstream model (FOOTNOTE_TIER_MODELS)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.settings import Settings, SettingsError
from tests.fakes.upstream import FakeUpstream

Q = "Were Scott Derrickson and Ed Wood of the same nationality?"


def test_tiers_use_their_mapped_upstream_model(
    footnote_factory: Any, upstream: FakeUpstream
) -> None:
    base = footnote_factory(tier_models=(("speed", "small-model"), ("core", "big-model")))
    seen = {}
    for tier in ("speed", "lite", "footnote"):
        upstream.requests.clear()
        resp = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": tier, "messages": [{"role": "user", "content": Q}]},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        answers = [r for r in upstream.requests if r["path"] == "/v1/chat/completions"]
        assert answers and answers[-1]["body"] is not None
        seen[tier] = answers[-1]["body"]["model"]
    # Mapped tiers use their model; others (and the "footnote" alias of base) the default.
    assert seen == {"speed": "small-model", "lite": "fake-model", "footnote": "fake-model"}
    cards = httpx.get(f"{base}/v1/models", timeout=10).json()["data"]
    assert {c["id"]: c["upstream_model"] for c in cards} == {
        "speed": "small-model",
        "lite": "fake-model",
        "base": "fake-model",
        "core": "big-model",
    }


def test_tier_models_setting_is_parsed_and_checked() -> None:
    settings = Settings.from_env({"FOOTNOTE_TIER_MODELS": "speed=gpt-4o-mini, core = gpt-4o"})
    assert settings.tier_models == (("speed", "gpt-4o-mini"), ("core", "gpt-4o"))
    with pytest.raises(SettingsError, match="unknown tier 'turbo'"):
        Settings.from_env({"FOOTNOTE_TIER_MODELS": "turbo=gpt-4o"})
    with pytest.raises(SettingsError, match="tier=model"):
        Settings.from_env({"FOOTNOTE_TIER_MODELS": "core"})
