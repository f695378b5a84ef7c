"""verify_all: many models at once against the real S3 server, in order, once per distinct check, with at most
`max_connections` connections, progress reported, labels held against what loads."""

from __future__ import annotations

import dataclasses

import pytest

from devtools.faultproxy import FaultProxy
from savedmodel import Verdict, VersionPolicy
from savedmodel.batch import Check, verify_all
from tests.savedmodel.conftest import HALF_PLUS_TWO, model_files

pytestmark = pytest.mark.s3
GOOD = model_files(HALF_PLUS_TWO)
LATEST = VersionPolicy("latest")


@pytest.fixture()
def models(s3_bucket, put) -> list[str]:
    """m00..m11 complete at version 1; m03 also has a partial version 2."""
    objects = {f"m{i:02d}/1/{name}": body for i in range(12) for name, body in GOOD.items()}
    objects["m03/2/saved_model.pb"] = GOOD["saved_model.pb"]
    put(objects)
    return [f"s3://{s3_bucket}/m{i:02d}" for i in range(12)]


def test_reports_in_order_with_progress(settings, models):
    seen = []
    checks = [Check(f"env/m{i}", path, LATEST, settings) for i, path in enumerate(models)]
    reports = verify_all(checks, max_connections=4, progress=lambda done, total: seen.append((done, total)))
    assert [r.base_path for r in reports] == models
    assert [r.verdict for r in reports] == [Verdict.VALID] * 3 + [Verdict.INVALID] + [Verdict.VALID] * 8
    assert seen == [(n, 12) for n in range(13)]


def test_identical_checks_run_once(settings, models):
    check = Check("dev/m0", models[0], LATEST, settings)
    reports = verify_all(
        [check, dataclasses.replace(check, label="prod/m0"), check], max_connections=2, progress=None
    )
    assert reports[0] is reports[1] is reports[2]


def test_labels_are_held_against_what_loads(settings, models):
    policy = VersionPolicy("specific", versions=(1,))
    checks = [
        Check("a", models[0], policy, settings, labels=(("stable", 1),)),
        Check("b", models[0], policy, settings, labels=(("canary", 2),)),
    ]
    good, bad = verify_all(checks, max_connections=2)
    assert good.verdict is Verdict.VALID
    assert bad.verdict is Verdict.INVALID
    assert bad.problems == (
        "version label 'canary' names version 2, which the specific:1 policy does not load from what S3 "
        "holds: TF Serving would refuse the model config",
    )


def test_connections_stay_within_the_bound(settings, models, s3_server):
    with FaultProxy(s3_server.url) as proxy:
        proxy.set_fault("delay", seconds=0.05)  # requests overlap: an unbounded pool would grow
        through = dataclasses.replace(settings, endpoint_url=proxy.url)
        checks = [Check(f"m{i}", path, LATEST, through) for i, path in enumerate(models)]
        reports = verify_all(checks, max_connections=3)
        assert len(reports) == 12 and Verdict.CANNOT_VERIFY not in {r.verdict for r in reports}
        assert 1 <= proxy.connections <= 3


def test_a_refused_endpoint_names_the_check(settings, models):
    bad = dataclasses.replace(settings, endpoint_url="http://[::1")
    with pytest.raises(ValueError, match=r"^prod/m0: "):
        verify_all([Check("prod/m0", models[0], LATEST, bad)], max_connections=1)
    with pytest.raises(ValueError, match="max_connections"):
        verify_all([], max_connections=0)
