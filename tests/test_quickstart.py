"""The quickstart's machinery at toy scale (the full run is the README's first command)."""

import pytest

pytest.importorskip("tensorflow")
import keras  # noqa: E402

from kpose.engine.config import load_config  # noqa: E402
from kpose.quickstart import QuickstartSettings, run_quickstart  # noqa: E402


def test_quickstart_generates_trains_evaluates_and_leaves_a_model(tmp_path):
    settings = QuickstartSettings(out_dir=tmp_path / "qs", train_images=6, val_images=3, epochs=1, batch_size=4)
    config, metrics, seconds = run_quickstart(settings)
    run = tmp_path / "qs"
    assert (run / "data" / "annotations" / "person_keypoints_train.json").exists()
    assert {"AP", "AP75", "PCK@0.1"} <= set(metrics) and seconds > 0
    model = keras.saving.load_model(run / "best.keras", safe_mode=True)
    assert model.output["heatmaps"].shape[1:] == (128, 96, 17)  # the SR head's full-resolution maps
    # the config it wrote is a valid training config for `kpose train`
    reloaded = load_config(run / "config.yaml")
    assert reloaded.model.name == config.model.name and reloaded.model.options == settings.model_options
    assert reloaded.train.sigma == settings.sigma and reloaded.data.augment.flip_prob == 0.0
