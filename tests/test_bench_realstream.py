"""The real-stream benchmark's ECE noise floor: what a perfectly calibrated router would measure."""

from __future__ import annotations

import numpy as np

from bench.realstream import ece_noise_floor


def test_certain_confidences_have_no_floor() -> None:
    assert ece_noise_floor(np.ones(50)) == 0.0
    assert ece_noise_floor(np.array([])) == 0.0


def test_the_floor_shrinks_as_the_set_grows() -> None:
    rng = np.random.default_rng(1)
    small = ece_noise_floor(rng.uniform(0.3, 0.95, 150), draws=300)
    large = ece_noise_floor(rng.uniform(0.3, 0.95, 15_000), draws=300)
    assert 0.04 < small < 0.12
    assert large < 0.015
