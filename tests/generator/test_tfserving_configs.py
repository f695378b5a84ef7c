"""The generator's TF Serving config files next to TF Serving's own."""

from __future__ import annotations

from pathlib import Path

from generator.catalogue import Batching
from generator.render.tfserving import batching_config

TFSERVING = Path(__file__).resolve().parents[1] / "testdata" / "tfserving"


def test_default_batching_config_is_tf_servings_test_config():
    assert batching_config(Batching()) == (TFSERVING / "batching_config.txt").read_text()
