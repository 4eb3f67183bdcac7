"""Backbone weights from a local file of the keras.applications model (``weights=<file>``),
offline; ``weights="imagenet"`` goes the same way with the file Keras downloads.

Every file is written from a keras.applications model built by the test with random, seeded
weights, every variable randomized (BatchNorm statistics and biases included, so a layer left at
its initial values cannot pass). The kpose backbone built from the file must hold, layer by
layer name, the weights of that model, and compute the same features as an independent
reference: the application's own layer outputs where kpose uses the application unchanged, and
for ResNet (kpose moves each stage's stride-2 into the 3x3 conv, "v1.5", padded on every
side as in PyTorch) a hand-written bottleneck computation with the application's weights.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from kpose.engine.config import load_config  # noqa: E402
from kpose.engine.training import build_model  # noqa: E402
from kpose.errors import ConfigError  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.models import create_model, get_backbone  # noqa: E402
from kpose.models.backbones import BACKBONES, BACKBONE_LAYER_NAME, LEVELS  # noqa: E402

# Small, non-square: every backbone divides it by 32.
INPUT_SIZE = (128, 96)
SEED = 7
# Backbones whose build, save and reference take more than ~20 s on two CPU cores.
SLOW = {"resnet101", "resnet152"}
APPLICATION_BACKBONES = [
    pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
    for name, spec in BACKBONES.items()
    if spec.keras_application is not None
]
# kpose's ResNets move each stage's stride-2 from the 1x1 to the 3x3 conv ("v1.5").
RESNETS = {"resnet50", "resnet101", "resnet152"}
# The weights file formats, as :func:`weights_file` writes them.
FORMATS = (".weights.h5", "hosted .h5", ".keras")


# --- the keras.applications models the files are written from ---------------------------


def randomize(model: keras.Model, seed: int) -> None:
    """Every variable of ``model`` random: kernels keep their seeded initialization, BatchNorm
    scales and variances are drawn from U(0.5, 1.5), everything else (BatchNorm offsets and
    means, conv biases) from N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.name in ("kernel", "depthwise_kernel"):
            continue
        if variable.name in ("gamma", "moving_variance"):
            values = rng.uniform(0.5, 1.5, variable.shape)
        else:
            values = rng.normal(0.0, 0.1, variable.shape)
        variable.assign(values.astype(variable.dtype))


def weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Layer name -> layer, for the layers of ``model`` that hold weights."""
    return {layer.name: layer for layer in model.layers if layer.weights}


def copy_weights_by_name(target: keras.Model, source: keras.Model) -> None:
    """Every weighted layer of ``target`` takes the weights of ``source``'s layer of its name."""
    for name, layer in weighted_layers(target).items():
        layer.set_weights(source.get_layer(name).get_weights())


class Applications:
    """keras.applications models with random weights, built once per backbone per module.

    ``full(name)``: the application as a user builds it to save its weights (classifier and
    Keras' defaults included, e.g. MobileNetV3's rescaling layer), randomized.
    ``headless(name)``: without its classifier and with kpose's constructor options, as kpose
    cuts it (ResNet: before the stride move), holding ``full(name)``'s weights.
    """

    def __init__(self) -> None:
        self._full: dict[str, keras.Model] = {}
        self._headless: dict[str, keras.Model] = {}

    def full(self, name: str) -> keras.Model:
        if name not in self._full:
            keras.utils.set_random_seed(SEED)
            app = get_backbone(name).keras_application
            model = app.constructor(weights=None, input_shape=(*INPUT_SIZE, 3))
            randomize(model, SEED)
            self._full[name] = model
        return self._full[name]

    def headless(self, name: str) -> keras.Model:
        if name not in self._headless:
            app = get_backbone(name).keras_application
            model = app.constructor(
                include_top=False, weights=None, input_shape=(*INPUT_SIZE, 3), **app.options
            )
            copy_weights_by_name(model, self.full(name))
            self._headless[name] = model
        return self._headless[name]


def save_hosted_h5(model: keras.Model, path: Path) -> None:
    """``model``'s weights in the layout of Keras' hosted files (e.g.
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``): the root lists ``layer_names``;
    each layer's group lists its ``weight_names`` (trainable first, then non-trainable) and
    holds one dataset per weight under that name. Keras loads these files by layer order."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = f.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{w.name}:0" for w in weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, weight in zip(names, weights):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(weight))


@pytest.fixture(scope="module")
def applications() -> Applications:
    return Applications()


@pytest.fixture(scope="module")
def weights_file(
    applications: Applications, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], Path]:
    """``(backbone, format) -> path``: the backbone's application weights in that format, the
    ``.weights.h5`` and ``.keras`` files saved from the full application (classifier included),
    the hosted ``.h5`` from the headless one (as Keras' "notop" files are)."""
    folder = tmp_path_factory.mktemp("weights")
    files: dict[tuple[str, str], Path] = {}

    def make(name: str, fmt: str) -> Path:
        if (name, fmt) not in files:
            if fmt == ".weights.h5":
                path = folder / f"{name}.weights.h5"
                applications.full(name).save_weights(path)
            elif fmt == ".keras":
                path = folder / f"{name}.keras"
                applications.full(name).save(path)
            else:
                path = folder / f"{name}_notop.h5"
                save_hosted_h5(applications.headless(name), path)
            files[name, fmt] = path
        return files[name, fmt]

    return make


# --- the checks --------------------------------------------------------------------------


def assert_weights_of(model: keras.Model, reference: keras.Model) -> None:
    """``model`` holds a weighted layer for every weighted layer of ``reference`` (same names),
    each with exactly ``reference``'s values."""
    layers = weighted_layers(model)
    assert sorted(layers) == sorted(weighted_layers(reference))
    for name, layer in layers.items():
        expected = reference.get_layer(name).weights
        for got, want in zip(layer.weights, expected, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(got),
                keras.ops.convert_to_numpy(want),
                err_msg=got.path,
            )


def conv_bn(x: np.ndarray, app: keras.Model, name: str, strides: int, pad: int = 0) -> np.ndarray:
    """``{name}_conv`` then ``{name}_bn`` (inference) of ``app``, computed from their weights
    with ``strides``, on the input zero-padded by ``pad`` pixels on every side (then "valid"),
    or with the layer's own padding: (B, H, W, C) -> (B, H/strides, W/strides, C')."""
    conv = app.get_layer(f"{name}_conv")
    bn = app.get_layer(f"{name}_bn")
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    y = keras.ops.conv(x, conv.kernel, strides=strides, padding="valid" if pad else conv.padding.lower())
    if conv.use_bias:
        y = y + conv.bias
    y = (y - bn.moving_mean) / keras.ops.sqrt(bn.moving_variance + bn.epsilon)
    return keras.ops.convert_to_numpy(y * bn.gamma + bn.beta)


def bottleneck(
    x: np.ndarray, app: keras.Model, block: str, stride: int, stride_in: str
) -> np.ndarray:
    """keras.applications ResNet block ``block`` (e.g. ``"conv3_block1"``) computed by hand,
    its stride in the 1x1 conv (``stride_in="1x1"``, ResNet v1 as Keras builds it) or in the
    3x3 conv (``"3x3"``, v1.5, padded by one pixel on every side as PyTorch's ResNet):
    (B, H, W, C) -> (B, H/stride, W/stride, C')."""
    names = {layer.name for layer in app.layers}
    stride_1x1, stride_3x3 = (stride, 1) if stride_in == "1x1" else (1, stride)
    pad_3x3 = 1 if stride_3x3 > 1 else 0
    shortcut = conv_bn(x, app, f"{block}_0", stride) if f"{block}_0_conv" in names else x
    y = np.maximum(conv_bn(x, app, f"{block}_1", stride_1x1), 0.0)
    y = np.maximum(conv_bn(y, app, f"{block}_2", stride_3x3, pad_3x3), 0.0)
    return np.maximum(shortcut + conv_bn(y, app, f"{block}_3", 1), 0.0)


def resnet_stages(f2: np.ndarray, app: keras.Model, stride_in: str) -> dict[str, np.ndarray]:
    """F2 and stages conv3..conv5 of ResNet ``app`` by hand: {level: (B, H/s, W/s, C)}."""
    names = {layer.name for layer in app.layers}
    features, x = {"F2": f2}, f2
    for stage in (3, 4, 5):
        block = 1
        while f"conv{stage}_block{block}_out" in names:
            x = bottleneck(x, app, f"conv{stage}_block{block}", 2 if block == 1 else 1, stride_in)
            block += 1
        features[f"F{stage}"] = x
    return features


def application_levels(name: str, app: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs of ``app``'s layers that kpose's levels are cut at, unchanged."""
    layer_names = get_backbone(name).keras_application.layer_names
    outputs = {
        level: app.output if layer is None else app.get_layer(layer).output
        for level, layer in layer_names.items()
    }
    values = keras.Model(app.input, outputs)(x)
    return {level: keras.ops.convert_to_numpy(v) for level, v in values.items()}


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal up to float32 rounding of two computation orders, relative to ``want``'s scale."""
    assert got.shape == want.shape, what
    scale = float(np.abs(want).max())
    assert scale > 0, what
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def expected_features(name: str, app: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """kpose backbone ``name``'s features on ``x``, from the headless application ``app``.

    Without a stride move, the application's own layer outputs. For ResNet, F2 is the
    application's (stage conv2 does not downsample) and F3..F5 are computed by hand with the
    stride in the 3x3 conv; the same hand computation with the stride in the 1x1 conv must give
    the application's own outputs, which checks it.
    """
    levels = application_levels(name, app, x)
    if name not in RESNETS:
        return levels
    v1 = resnet_stages(levels["F2"], app, stride_in="1x1")
    for level in LEVELS:
        assert_close(v1[level], levels[level], f"hand-computed ResNet v1 {level}")
    return resnet_stages(levels["F2"], app, stride_in="3x3")


# --- tests --------------------------------------------------------------------------------


def test_keras_weights_for_every_application_backbone() -> None:
    """The parametrization below covers every backbone built on keras.applications (kpose's
    own HRNet, HRFormer and TransPose-R are not)."""
    names = [param.values[0] for param in APPLICATION_BACKBONES]
    assert names == [name for name, spec in BACKBONES.items() if spec.keras_application is not None]
    assert len(names) == 6


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", APPLICATION_BACKBONES)
def test_backbone_from_weights_file(name: str, fmt: str, applications, weights_file) -> None:
    """Every weight of the application, loaded and unchanged; the features as computed from
    them (ResNet: with the stride in the 3x3 conv, so not the application's own F3..F5)."""
    backbone = get_backbone(name).build(INPUT_SIZE, weights=weights_file(name, fmt))
    assert_weights_of(backbone, applications.headless(name))

    x = np.random.default_rng(SEED).uniform(-1.0, 1.0, (2, *INPUT_SIZE, 3)).astype("float32")
    app = applications.headless(name)
    got = {level: keras.ops.convert_to_numpy(v) for level, v in backbone(x).items()}
    expected = expected_features(name, app, x)
    for level in LEVELS:
        assert_close(got[level], expected[level], f"{name} {level}")
    if name in RESNETS:
        own = application_levels(name, app, x)["F3"]
        assert not np.allclose(got["F3"], own, rtol=1e-2, atol=1e-2 * np.abs(own).max())


def test_create_model_loads_backbone_weights(applications, weights_file) -> None:
    model = create_model(
        "simplebaseline_resnet50",
        input_size=INPUT_SIZE,
        weights=weights_file("resnet50", ".weights.h5"),
    )
    assert_weights_of(model.get_layer(BACKBONE_LAYER_NAME), applications.headless("resnet50"))


def test_config_model_weights(tmp_path: Path, applications, weights_file) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model:\n"
        "  name: simplebaseline_mobilenetv3_small\n"
        f"  input_size: [{INPUT_SIZE[0]}, {INPUT_SIZE[1]}]\n"
        f"  weights: {weights_file('mobilenetv3_small', '.weights.h5').resolve()}\n"
        "data:\n"
        "  schema: coco\n"
    )
    config = load_config(path)
    model = build_model(config, get_schema(config.data.schema))
    backbone = model.get_layer(BACKBONE_LAYER_NAME)
    assert_weights_of(backbone, applications.headless("mobilenetv3_small"))


def test_random_init_fails_the_weight_check(applications) -> None:
    """The weight check above can fail: a backbone built without the file does not pass it."""
    backbone = get_backbone("mobilenetv3_small").build(INPUT_SIZE)
    with pytest.raises(AssertionError):
        assert_weights_of(backbone, applications.headless("mobilenetv3_small"))


# --- errors -------------------------------------------------------------------------------


def names(path: Path, backbone: str) -> str:
    """The start of every error about weights file ``path`` of ``backbone``, as a pattern."""
    return rf"backbone {backbone}: weights file {re.escape(str(path))} "


def assert_no_user_warnings(recwarn: pytest.WarningsRecorder) -> None:
    """Keras warns once per layer it could not load; kpose drops those warnings of a failed
    load (its ConfigError says what is wrong)."""
    assert [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)] == []


def test_missing_file_names_file_and_backbone(tmp_path: Path) -> None:
    path = tmp_path / "resnet50_notop.h5"
    with pytest.raises(ConfigError, match=names(path, "resnet50") + "does not exist"):
        get_backbone("resnet50").build(INPUT_SIZE, weights=path)


def test_folder_is_refused(tmp_path: Path) -> None:
    expected = rf"backbone resnet50: weights {re.escape(str(tmp_path))} is a folder"
    with pytest.raises(ConfigError, match=expected):
        get_backbone("resnet50").build(INPUT_SIZE, weights=tmp_path)


def test_unknown_format_lists_the_formats(tmp_path: Path) -> None:
    path = tmp_path / "resnet50.npz"
    path.write_bytes(b"")
    accepted = r"is not a Keras weights file \(accepted: .weights.h5, .keras, .h5, .hdf5\)"
    with pytest.raises(ConfigError, match=names(path, "resnet50") + accepted):
        get_backbone("resnet50").build(INPUT_SIZE, weights=path)


def test_weights_must_be_a_path() -> None:
    with pytest.raises(ConfigError, match="backbone resnet50: weights must be None, 'imagenet'"):
        get_backbone("resnet50").build(INPUT_SIZE, weights=True)


@pytest.mark.parametrize("fmt", [".weights.h5", "hosted .h5"])
def test_file_of_another_architecture(fmt: str, weights_file, recwarn) -> None:
    path = weights_file("mobilenetv3_small", fmt)
    expected = "does not hold the weights of keras.applications.ResNet50 .*model.init_from"
    with pytest.raises(ConfigError, match=names(path, "resnet50") + expected):
        get_backbone("resnet50").build(INPUT_SIZE, weights=path)
    assert_no_user_warnings(recwarn)


def test_file_of_another_depth(weights_file, recwarn) -> None:
    path = weights_file("resnet50", ".weights.h5")
    expected = "does not hold the weights of keras.applications.ResNet101"
    with pytest.raises(ConfigError, match=names(path, "resnet101") + expected):
        get_backbone("resnet101").build(INPUT_SIZE, weights=path)
    assert_no_user_warnings(recwarn)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "mobilenetv3_small.weights.h5"
    path.write_text("not an HDF5 file")
    with pytest.raises(ConfigError, match=names(path, "mobilenetv3_small") + "does not hold"):
        get_backbone("mobilenetv3_small").build(INPUT_SIZE, weights=path)


@pytest.mark.parametrize("weights", ["imagenet", "hrnet_w32_imagenet.weights.h5"])
def test_hrnet_has_no_keras_weights(weights: str) -> None:
    expected = (
        "backbone hrnet_w32 has no keras.applications weights.*"
        "kpose import CHECKPOINT.*model.init_from: OUT.keras"
    )
    with pytest.raises(ConfigError, match=expected):
        create_model("simplebaseline_hrnet_w32", input_size=INPUT_SIZE, weights=weights)
