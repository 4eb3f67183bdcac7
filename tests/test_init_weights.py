"""``model.init_from``: a model started from the layers it shares with a saved kpose model."""

import numpy as np
import pytest
import yaml

pytest.importorskip("tensorflow")

from kpose.engine.config import load_config  # noqa: E402
from kpose.engine.init_weights import init_from_model, weighted_layers  # noqa: E402
from kpose.errors import ConfigError  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.models import create_model  # noqa: E402

SIZE = (64, 64)


@pytest.fixture(scope="module")
def topdown_file(tmp_path_factory):
    """A saved top-down SR-head model on MobileNetV3-Small's F3, its weights moved off their init."""
    model = create_model("srhead_mobilenetv3_small", input_size=SIZE, feature="F3", scale=1.0, kernel_size=5)
    rng = np.random.default_rng(0)
    for layer in model.layers[2].layers + model.layers[3:]:
        layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in layer.get_weights()])
    path = tmp_path_factory.mktemp("init") / "topdown.keras"
    model.save(path)
    return path, model


def test_bottomup_model_takes_the_backbone_and_keeps_its_own_heads(topdown_file):
    path, topdown = topdown_file
    bottomup = create_model("srhead_ae_mobilenetv3_small", input_size=SIZE, feature="F3", scale=0.5, kernel_size=5)
    built = {p: [w.copy() for w in layer.get_weights()] for p, layer in weighted_layers(bottomup)}
    transfer = init_from_model(bottomup, path)

    source = dict(weighted_layers(topdown))
    backbone = [p for p, _ in weighted_layers(bottomup) if p.startswith("backbone/")]
    assert backbone and set(backbone) <= set(transfer.copied)
    for p, layer in weighted_layers(bottomup):
        if p in transfer.copied:
            for got, want in zip(layer.get_weights(), source[p].get_weights()):
                np.testing.assert_array_equal(got, want)
        else:  # left as built
            for got, want in zip(layer.get_weights(), built[p]):
                np.testing.assert_array_equal(got, want)
    # the r = 8 top-down head and the r = 4 bottom-up head share a name, not a shape; tags are new
    assert transfer.shape_mismatch == ["sr_lkconv"] and transfer.not_in_source == ["tag_conv"]
    assert transfer.parameters == sum(w.size for p in transfer.copied for w in source[p].get_weights())
    summary = transfer.summary(path)
    assert str(path) in summary and "sr_lkconv" in summary and f"copied {len(transfer.copied)} layers" in summary


def test_another_backbone_is_refused_naming_the_file(topdown_file):
    path, _ = topdown_file
    # MobileNetV3-Large has layers of Small's names, some of the same shapes: none is to copy
    other = create_model("srhead_mobilenetv3_large", input_size=SIZE, feature="F3", scale=1.0, kernel_size=5)
    message = rf"model.init_from: {path} is srhead_mobilenetv3_small, on backbone mobilenetv3_small; "
    with pytest.raises(ConfigError, match=message + "srhead_mobilenetv3_large needs a mobilenetv3_large model"):
        init_from_model(other, path)


def test_training_config_builds_from_init_from(topdown_file, tmp_path):
    from kpose.engine.training import build_model

    path, topdown = topdown_file
    config = {
        "model": {"name": "srhead_mobilenetv3_small", "input_size": [96, 64], "init_from": str(path),
                  "options": {"feature": "F3", "scale": 1.0, "kernel_size": 5}},
        "data": {"train": {"annotations": str(path), "images": str(tmp_path)}},
    }
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(config))
    model = build_model(load_config(config_file), get_schema("coco"))
    # every layer copies (input sizes may differ: no weight depends on them)
    for got, want in zip(model.get_weights(), topdown.get_weights()):
        np.testing.assert_array_equal(got, want)

    config["model"]["init_from"] = str(tmp_path / "missing.keras")
    config_file.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=rf"{config_file}: model.init_from: .*missing.keras does not exist"):
        load_config(config_file)


def test_init_from_brings_the_input_normalization_its_weights_were_trained_with(tmp_path):
    """An imported PyTorch checkpoint normalizes as its code did (here BGR with RGB-ordered
    ImageNet statistics, as SimMRPose); a run started from it must feed its weights the same."""
    from kpose.engine.training import build_model
    from kpose.models import InputNormalization, input_normalization

    imported = InputNormalization((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), bgr=True)
    source = create_model("srhead_mobilenetv3_small", input_size=SIZE, normalization=imported, feature="F3", scale=1.0, kernel_size=5)
    path = tmp_path / "imported.keras"
    source.save(path)
    config = {
        "model": {"name": "srhead_mobilenetv3_small", "input_size": [96, 64], "init_from": str(path),
                  "options": {"feature": "F3", "scale": 1.0, "kernel_size": 5}},
        "data": {"train": {"annotations": str(path), "images": str(tmp_path)}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    model = build_model(load_config(tmp_path / "config.yaml"), get_schema("coco"))
    assert input_normalization(model) == imported
    default = create_model("srhead_mobilenetv3_small", input_size=SIZE, feature="F3", scale=1.0, kernel_size=5)
    assert input_normalization(default) != imported  # the backbone's own would have been used
