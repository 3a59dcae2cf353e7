"""bench/touch.py's summary: MAE and bias per method over every post of every run."""

from __future__ import annotations

import pytest

from bench.touch import summarise
from learning.touch import MODELS


def run(truths: list[float], offset: float) -> dict:
    names = ("time_window", "deconvolution", *MODELS)
    return {
        "posts": [
            {"truth": t, "estimates": {n: t + (offset if n == "linear" else -1.0) for n in names}}
            for t in truths
        ],
        "follows": 10,
        "follows_with_touch": 4,
    }


def test_summary_pools_the_posts_of_every_run() -> None:
    s = summarise([run([3.0, 5.0], offset=2.0), run([1.0], offset=-4.0)])
    assert s["posts"] == 3 and s["follows"] == 20 and s["follows_with_touch"] == 8
    assert s["linear"]["mae"] == pytest.approx((2 + 2 + 4) / 3)
    assert s["linear"]["bias"] == pytest.approx((2 + 2 - 4) / 3)
    assert s["time_window"]["mae"] == pytest.approx(1.0)
    assert s["time_window"]["bias"] == pytest.approx(-1.0)
