"""Fixtures of hookline-fraud's tests, on hookline's pytest plugin (``make_pipeline``...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import hookline
import pytest
from hookline.testing import PipelineFactory

import hookline_fraud


class Fraud:
    """A pipeline of hookline-fraud, its flags the ones ``hookline.flags`` reads while it
    processes (as during a run)."""

    def __init__(self, pipeline: hookline.Pipeline) -> None:
        self.pipeline = pipeline

    def process(self, event: Mapping[str, Any]) -> Any:
        """The event the phases return (it passed every rule)."""
        with self.pipeline.flags.active():
            return self.pipeline.process(event)

    def reject(self, event: Mapping[str, Any]) -> hookline.Reject:
        """The rejection of an event a rule refuses (fails the test if none does)."""
        with pytest.raises(hookline.Reject) as info:
            self.process(event)
        return info.value

    def reason(self, event: Mapping[str, Any]) -> str:
        return self.reject(event).reason


FraudFactory = Callable[..., Fraud]


@pytest.fixture
def fraud(make_pipeline: PipelineFactory) -> FraudFactory:
    """``fraud(flags=None, **settings)``: hookline-fraud with ``settings`` as its
    ``[settings.fraud]`` table and ``flags`` as ``--flag`` would set them."""

    def build(*, flags: Mapping[str, Any] | None = None, **settings: Any) -> Fraud:
        return Fraud(make_pipeline(hookline_fraud, settings={"fraud": settings}, flags=flags))

    return build
