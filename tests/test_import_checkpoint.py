"""`kpose import`: PyTorch checkpoints in the papers' naming become kpose models that compute
the same heatmaps as the PyTorch networks (tests/torch_twins.py), within 1e-4 of the largest
heatmap value (at least 1)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import torch_twins as tt  # noqa: E402

from kpose.cli.main import main  # noqa: E402
from kpose.errors import ConfigError  # noqa: E402
from kpose.interop.pose_checkpoint import import_checkpoint  # noqa: E402
from kpose.models.backbones.base import TORCH  # noqa: E402

SIZE = (64, 64)  # the smallest input every backbone takes (a multiple of 32)
K = 17
R50_LEVELS = [2048, 1024, 512, 256]
HR32_LEVELS = [256, 128, 64, 32]


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (2, *SIZE, 3)).astype(np.float32)


def _torch_outputs(net: tt.PoseNet, image: np.ndarray, bgr: bool) -> list[np.ndarray]:
    """The twin's outputs (N, h, w, K) on ``image`` (RGB pixels) normalized as its code does."""
    x = (image[..., ::-1] if bgr else image) - np.array(TORCH.mean, np.float32)
    x = x / np.array(TORCH.std, np.float32)
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2))
    return [o.permute(0, 2, 3, 1).numpy() for o in (out if isinstance(out, list) else [out])]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 1e-4 * scale


def _save(net: tt.PoseNet, path, wrap: str = "mmpose", legacy: bool = False, prefix: str = ""):
    state = {prefix + key: value for key, value in net.checkpoint_state().items()}
    if wrap == "mmpose1":
        state = {key.replace("keypoint_head.", "head.", 1): value for key, value in state.items()}
    payload = {"state_dict": state, "meta": {"epoch": 210}} if wrap.startswith("mmpose") else state
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


# (kpose model, twin, checkpoint style, legacy format, output names compared to the twin's)
CASES = {
    "simplebaseline_resnet50-mmpose0": (
        "simplebaseline_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.SimpleHead(2048, K)), "mmpose", False, ["heatmaps"]),
    "simplebaseline_resnet50-mmpose1-legacy": (
        "simplebaseline_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.SimpleHead(2048, K)), "mmpose1", True, ["heatmaps"]),
    "srhead_hrnet_w32": (
        "srhead_hrnet_w32", lambda: tt.PoseNet(tt.HRNet(32), tt.SRHead(32, K, deconvs=0)), "mmpose", False, ["heatmaps"]),
    "srpose_resnet50": (
        "srpose_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.SRPoseHead(R50_LEVELS, K)), "mmpose", False,
        ["lr_heatmaps", "sr1", "sr2", "sr3", "heatmaps"]),
    "mrheatnet1_resnet50-simmrpose": (
        "mrheatnet1_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.MRHeatNetHead(K, 1), prefixed=False),
        "bare", True, ["heatmaps"]),
    "mrfeanet2_resnet50-simmrpose": (
        "mrfeanet2_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.MRFeaNetHead(K, 2), prefixed=False),
        "bare", False, ["heatmaps"]),
}
SLOW_CASES = {
    "simplebaseline_hrnet_w32": (
        "simplebaseline_hrnet_w32", lambda: tt.PoseNet(tt.HRNet(32), tt.SimpleHead(32, K, deconvs=0)), "mmpose", False, ["heatmaps"]),
    "srhead_resnet50": (
        "srhead_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.SRHead(2048, K)), "mmpose", False, ["heatmaps"]),
    "srpose_hrnet_w32": (
        "srpose_hrnet_w32", lambda: tt.PoseNet(tt.HRNet(32, multiscale_output=True), tt.SRPoseHead(HR32_LEVELS, K)),
        "mmpose", False, ["lr_heatmaps", "sr1", "sr2", "sr3", "heatmaps"]),
    "mrheatnet2_resnet50": (
        "mrheatnet2_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.MRHeatNetHead(K, 2), prefixed=False), "bare", False, ["heatmaps"]),
    "mrfeanet1_resnet50": (
        "mrfeanet1_resnet50", lambda: tt.PoseNet(tt.ResNet(50), tt.MRFeaNetHead(K, 1), prefixed=False), "bare", False, ["heatmaps"]),
    "simplebaseline_resnet101": (
        "simplebaseline_resnet101", lambda: tt.PoseNet(tt.ResNet(101), tt.SimpleHead(2048, K)), "mmpose", False, ["heatmaps"]),
    "simplebaseline_resnet152": (
        "simplebaseline_resnet152", lambda: tt.PoseNet(tt.ResNet(152), tt.SimpleHead(2048, K)), "mmpose", False, ["heatmaps"]),
    "simplebaseline_hrnet_w48": (
        "simplebaseline_hrnet_w48", lambda: tt.PoseNet(tt.HRNet(48), tt.SimpleHead(48, K, deconvs=0)), "mmpose", False, ["heatmaps"]),
}


def _round_trip(case, tmp_path) -> None:
    name, make, wrap, legacy, outputs = case
    net = tt.randomize(make())
    prefix = "module." if wrap == "bare" else ""  # DataParallel's prefix on SimMRPose's files
    path = _save(net, tmp_path / "model.pth", wrap, legacy, prefix)
    model, report = import_checkpoint(path, name, "coco", SIZE)
    assert report.left_over == []
    assert report.count("copied") + report.count("reshaped") + report.count("folded") == sum(
        not key.endswith("num_batches_tracked") for key in net.checkpoint_state()
    )
    image = _image()
    got = model(image, training=False)
    for output, want in zip(outputs, _torch_outputs(net, image, bgr=wrap == "bare")):
        _close(got[output].numpy(), want)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_imported_model_computes_the_torch_networks_heatmaps(case, tmp_path):
    _round_trip(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES.values(), ids=SLOW_CASES.keys())
def test_imported_model_computes_the_torch_networks_heatmaps_every_model(case, tmp_path):
    _round_trip(case, tmp_path)


@pytest.fixture(scope="module")
def hrnet_checkpoint(tmp_path_factory):
    net = tt.randomize(tt.PoseNet(tt.HRNet(32), tt.SimpleHead(32, K, deconvs=0)))
    path = _save(net, tmp_path_factory.mktemp("ckpt") / "hrnet_w32_coco.pth")
    return net, path


def test_cli_writes_a_model_that_exports_to_int8_and_runs_in_the_runtime(hrnet_checkpoint, tmp_path, capsys):
    from kpose.data.synthetic import write_synthetic_coco
    from kpose.tasks import export_model
    from kpose.metadata import read_metadata
    from kpose.runtime.backends import open_backend

    net, path = hrnet_checkpoint
    out = tmp_path / "imported.keras"
    code = main(["import", str(path), "--model", "simplebaseline_hrnet_w32", "-o", str(out), "--input-size", "64x64"])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert "| reshaped | 293 |" in printed and "| left over in the checkpoint | 0 |" in printed
    model = keras.saving.load_model(out)
    image = _image(1)
    want = _torch_outputs(net, image, bgr=False)[0]
    _close(model(image, training=False)["heatmaps"].numpy(), want)

    data = write_synthetic_coco(tmp_path / "data", 4, seed=5, split="val")
    float_file = export_model(out, tmp_path / "float.tflite")
    int8_file = export_model(out, tmp_path / "int8.tflite", quantize="int8", calibration=data.root, calibration_size=8)
    assert read_metadata(int8_file).quantization == "int8"
    assert read_metadata(float_file).normalization["mean"] == list(TORCH.mean)
    crops = image.astype(np.uint8)
    want = _torch_outputs(net, crops.astype(np.float32), bgr=False)[0]
    peaks = np.stack(np.unravel_index(want.reshape(2, -1, K).argmax(1), want.shape[1:3]), -1)  # (N, K, [y, x])
    keypoints = open_backend(float_file).run(crops)["keypoints"] * np.array([want.shape[2], want.shape[1]])
    assert np.abs(np.floor(keypoints[..., ::-1]) - peaks).max() == 0  # the float file finds the twin's peaks
    int8 = open_backend(int8_file).run(crops)
    assert int8["keypoints"].shape == (2, K, 2) and np.isfinite(int8["keypoints"]).all()


def test_backbone_only_takes_an_imagenet_checkpoint_and_reports_its_classifier(tmp_path, capsys):
    backbone = tt.randomize(tt.ResNet(50))
    state = {**backbone.state_dict(), "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(state, path)
    out = tmp_path / "start.keras"
    code = main(["import", str(path), "--model", "srhead_resnet50", "--backbone-only", "-o", str(out), "--input-size", "64x64"])
    assert code == 0 and "left over (not part of srhead_resnet50): fc.bias, fc.weight" in capsys.readouterr().out
    model = keras.saving.load_model(out)
    image = _image(2)
    x = (image - np.array(TORCH.mean, np.float32)) / np.array(TORCH.std, np.float32)
    with torch.no_grad():
        c5 = backbone(torch.from_numpy(x).permute(0, 3, 1, 2))[-1].permute(0, 2, 3, 1).numpy()
    features = model.get_layer("backbone")(model.get_layer("normalize")(image), training=False)
    _close(features["F5"].numpy(), c5)


def _bad(state: dict, tmp_path, model: str = "simplebaseline_hrnet_w32"):
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    out = tmp_path / "out.keras"
    code = main(["import", str(path), "--model", model, "-o", str(out), "--input-size", "64x64"])
    assert code == 2 and not out.exists()


def test_missing_tensor_is_named_and_nothing_is_written(hrnet_checkpoint, tmp_path, capsys):
    net, _ = hrnet_checkpoint
    state = net.checkpoint_state()
    del state["backbone.stage3.2.fuse_layers.0.1.1.running_var"]
    _bad(state, tmp_path)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'backbone.stage3.2.fuse_layers.0.1.1.running_var'" in err
    assert "stage3_module2_fuse0_from1_bn" in err


def test_wrong_shape_is_named_with_both_shapes(hrnet_checkpoint, tmp_path, capsys):
    state = dict(hrnet_checkpoint[0].checkpoint_state())
    state["keypoint_head.final_layer.weight"] = torch.zeros(16, 32, 1, 1)  # an MPII head under --schema coco
    _bad(state, tmp_path)
    err = capsys.readouterr().err
    assert "'keypoint_head.final_layer.weight' (16, 32, 1, 1) does not fit kpose layer 'heatmaps'" in err
    assert "(1, 1, 32, 17)" in err


def test_checkpoint_of_another_architecture_is_refused(hrnet_checkpoint, tmp_path, capsys):
    _bad(hrnet_checkpoint[0].checkpoint_state(), tmp_path, model="simplebaseline_resnet50")
    assert "'backbone.conv1.weight' (64, 3, 3, 3) does not fit kpose layer 'conv1_conv'" in capsys.readouterr().err


def test_tensors_no_layer_takes_are_refused(hrnet_checkpoint, tmp_path, capsys):
    state = {**hrnet_checkpoint[0].checkpoint_state(), "keypoint_head.extra.weight": torch.zeros(3)}
    _bad(state, tmp_path)
    assert "1 checkpoint tensor(s) fit no layer of simplebaseline_hrnet_w32 (keypoint_head.extra.weight)" in capsys.readouterr().err


def test_unsupported_model_and_headless_checkpoint_are_clear(tmp_path):
    backbone = tt.randomize(tt.ResNet(50))
    path = tmp_path / "backbone.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in backbone.state_dict().items()}}, path)
    with pytest.raises(ConfigError, match="no head tensors .* use --backbone-only"):
        import_checkpoint(path, "simplebaseline_resnet50", input_size=SIZE)
    with pytest.raises(ConfigError, match="backbones resnet50, .* not mobilenetv3_large"):
        import_checkpoint(path, "srhead_mobilenetv3_large", input_size=SIZE)
