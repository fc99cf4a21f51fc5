"""The plugin's tests: a real pipeline built from the plugin, without installing it."""

import json
from pathlib import Path
from typing import Any

import hookline_review
import pytest

import hookline
from hookline.config import Config
from hookline.errors import PluginError


def purchase(amount: float) -> dict[str, Any]:
    return {"event_id": f"e{amount}", "user_id": "u1", "kind": "purchase", "ts": 1,
            "amount": amount}


def pipeline(**settings: Any) -> hookline.Pipeline:
    config = Config(plugin_settings={"review": settings})
    return hookline.Pipeline.from_plugins([hookline_review], config)


def test_a_purchase_over_the_limit_is_rejected_with_its_reason() -> None:
    with pytest.raises(hookline.Reject) as rejected:
        pipeline().process(purchase(20_000))
    assert rejected.value.reason == "amount 20000 is over the limit of 10000"
    assert rejected.value.stage == "review.big_spender"


def test_a_purchase_over_half_the_limit_is_marked_for_review() -> None:
    assert pipeline().process(purchase(6_000)).review == "amount 6000 is over half the limit"
    assert pipeline().process(purchase(10)).review is None


def test_the_limit_is_a_setting() -> None:
    with pytest.raises(hookline.Reject):
        pipeline(limit=5_000).process(purchase(6_000))


def test_a_bad_setting_stops_the_pipeline_with_its_name() -> None:
    with pytest.raises(PluginError, match="limit: must be > 0"):
        pipeline(limit=0)


def test_a_run_stores_reviews_and_dead_letters_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(purchase(a)) + "\n" for a in (10, 6_000, 20_000)))
    report = hookline.run([str(source)], db=str(tmp_path / "test.db"),
                          config=Config(), pipeline=pipeline())
    assert (report.read, report.accepted, report.dead_lettered) == (3, 2, 1)
    assert report.stages == {"review.big_spender": 1}
