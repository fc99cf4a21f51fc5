"""The ``fraud.blocked_currency`` stage, driven the way a user meets it: through a pipeline.

Events come from hookline's pytest plugin (the ``make_event`` fixture)."""

from __future__ import annotations

from typing import Any

import hookline
import pytest
from hookline.config import Config
from hookline.errors import PluginError
from hookline.testing import EventFactory

import hookline_fraud
from hookline_fraud import normalize_codes


def with_settings(**settings: Any) -> hookline.Pipeline:
    """A pipeline of the fraud plugin with ``settings`` as its ``[settings.fraud]`` table."""
    config = Config.from_mapping({"settings": {"fraud": settings}})
    return hookline.Pipeline.from_plugins([hookline_fraud], config)


@pytest.fixture
def pipeline() -> hookline.Pipeline:
    return hookline.Pipeline.from_plugins([hookline_fraud])


@pytest.mark.parametrize("currency", ["XTS", "XXX"])
def test_blocked_currency_is_rejected_with_its_reason(
    pipeline: hookline.Pipeline, make_event: EventFactory, currency: str
) -> None:
    with pytest.raises(hookline.Reject) as info:
        pipeline.process(make_event(currency=currency))
    assert info.value.reason == f"currency {currency!r} is blocked"


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP"])
def test_allowed_currency_passes_unchanged(
    pipeline: hookline.Pipeline, make_event: EventFactory, currency: str
) -> None:
    data = make_event(currency=currency, tags=["web"])
    assert pipeline.process(data).to_dict() == data


def test_settings_replace_the_block_list(make_event: EventFactory) -> None:
    pipeline = with_settings(blocked=["eur", " gbp "])
    for currency in ("EUR", "GBP"):
        with pytest.raises(hookline.Reject, match=f"currency '{currency}' is blocked"):
            pipeline.process(make_event(currency=currency))
    # The defaults are replaced, not extended.
    assert pipeline.process(make_event(currency="XTS")).to_dict()["currency"] == "XTS"


def test_empty_block_list_blocks_nothing(make_event: EventFactory) -> None:
    pipeline = with_settings(blocked=[])
    assert pipeline.process(make_event(currency="XXX")).to_dict()["currency"] == "XXX"


def test_invalid_settings_are_refused_when_the_pipeline_is_built() -> None:
    with pytest.raises(PluginError, match=r"fraud\.blocked_currency.*blocked: must be a list"):
        with_settings(blocked="XTS")
    with pytest.raises(PluginError, match=r"unknown key.*blockd"):
        with_settings(blockd=["XTS"])


def test_normalize_codes_upper_cases_and_strips() -> None:
    assert normalize_codes(["xts", " XXX ", "Eur"]) == frozenset({"XTS", "XXX", "EUR"})
    assert normalize_codes([]) == frozenset()
