"""The networks that ship trained (issue #23.2): every one loads and stylises a bundled photo, has
its sidecar and data manifest, and fits in git; ``benchmarks.shipped evaluate`` runs end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nst_tf import data
from tests.conftest import ROOT

SHIPPED = data.shipped_models()


def test_every_shipped_network_is_one_the_recipe_makes():
    """Every painting of the recipe ships a network, and nothing else does (see shipped.md)."""
    from benchmarks.shipped import STYLES

    missing = sorted(set(STYLES) - set(SHIPPED))
    assert not missing, f"no network ships for {missing}: python -m benchmarks.shipped train --styles ..."
    assert set(SHIPPED) == set(STYLES), sorted(set(SHIPPED) - set(STYLES))


@pytest.mark.slow
@pytest.mark.parametrize("style", sorted(SHIPPED))
def test_each_shipped_network_loads_and_stylises_a_bundled_photo(style):
    from nst_tf import fast
    from nst_tf.images import load_image

    path = SHIPPED[style]
    assert path.stat().st_size < 2.2e6, "at most ~2 MB per model in git"
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["format"] == fast.FORMAT and side["stopped"] == "completed"
    assert side["config"]["style"] == style and side["weights"]["weights_id"]
    manifest = json.loads((path.parent / side["data_manifest"]).read_text())
    assert manifest["count"] == len(side["data"]) >= 5
    assert all(p["licence"] and len(p["sha256"]) == 64 for p in manifest["photos"])
    assert not {p["file"].rsplit("/", 1)[-1].split(".")[0] for p in manifest["photos"]} & set(fast.HELD_OUT)
    photo = load_image(ROOT / "data/src/content/coffee.jpg", long_side=96)
    out = fast.stylize(fast.load_model(path), photo)
    assert out.shape == photo.shape and np.isfinite(out).all()
    assert out.std() > 5 and np.abs(out - photo).mean() > 10  # a picture, and not the photo


@pytest.mark.slow
def test_quick_shipped_evaluation_writes_the_table_and_the_sheet(tmp_path, monkeypatch):
    from benchmarks import shipped
    from nst_tf import fast

    models = tmp_path / "models"
    config = fast.TrainConfig(style="gravel", size=32, batch_size=1, steps=1, width=4, res_blocks=1)
    fast.train(config, output=tmp_path / "work" / "gravel.keras", progress=False)
    models.mkdir()
    for name in ("gravel.keras", "gravel.json", "gravel.data.json"):
        shutil.copyfile(tmp_path / "work" / name, models / name)
    monkeypatch.setattr(data, "SHIPPED_DIR", models)
    res = shipped.evaluate(["gravel"], tmp_path / "out", quick=True)
    (row,) = res["rows"]
    assert row["photo"] == "coffee" and row["style"] == "gravel" and max(row["hw"]) == 64
    for key in ("network", "transfer"):
        assert 0 < row[key]["ssim"] <= 1 and row[key]["style_distance"] > 0
    assert row["meets_bar"] == all(
        (row["ratio"][k] <= v) if k == "style_distance" else (row["ratio"][k] >= v)
        for k, v in fast.BAR.items()
    )
    assert set(row["loss"]) == {"network", "lbfgs_2", "lbfgs_3"}
    assert res["machine"]["commit"] and "benchmarks.shipped" in res["command"]
    md = (tmp_path / "out" / "shipped.md").read_text()
    assert (
        "| gravel | coffee |" in md and (tmp_path / "out" / "shipped_gravel_sheet.jpg").stat().st_size > 1000
    )
