"""`kenning eval conflicts`: planted swaps and controls built from a real notes collection,
then asked through the real extractive answerer on a real SQLite index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kenning import Index
from kenning.eval import conflicts

SHARED = Path(
    os.environ.get("KENNING_SHARED_DATA") or Path(__file__).parents[3] / "shared" / "data"
)
TIL = SHARED / "notes-jbranchaud-til"

pytestmark = pytest.mark.skipif(not TIL.exists(), reason="needs ../shared/data")


@pytest.mark.slow
def test_planted_swaps_are_detected_and_controls_are_not(tmp_path: Path) -> None:
    per_kind = {"conflict": 4, "paraphrase": 2, "rejected": 2, "update": 2, "near-duplicate": 2}
    root, cases = conflicts.prepare(TIL, tmp_path, per_kind, background=20, seed=0)
    # every planted case is written: the original and its altered copy, on disk
    assert sorted(c.kind for c in cases) == sorted(k for k, n in per_kind.items() for _ in range(n))
    for case in cases:
        original, copy = (root / case.original).read_text(), (root / case.copy).read_text()
        assert original != copy
        if case.kind == "conflict":  # one value swapped for another of the same kind
            assert case.value != case.other and case.changed in copy
    with Index.open(tmp_path / "index.db", embedder="hash") as index:
        index.add([root])
        rates, outcomes = conflicts.run(index, root, cases, k=5)
    assert len(outcomes) == len(cases)
    planted = [o for o in outcomes if o.case.kind == "conflict"]
    controls = [o for o in outcomes if o.case.kind != "conflict"]
    # a detection names both files, both values, and cites a verified sentence from each side
    assert sum(o.detected for o in planted) >= 3
    assert all(o.reported for o in planted if o.detected)
    assert sum(o.reported for o in controls) <= 1
    assert rates["detection_rate"] == sum(o.detected for o in planted) / len(planted)
    assert rates["false_alarm_rate"] == sum(o.reported for o in controls) / len(controls)
