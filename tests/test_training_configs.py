"""Every config in training/configs/ loads and builds its model, so none of them rots."""

from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from kpose.engine.config import load_config  # noqa: E402
from kpose.keypoints import get_schema  # noqa: E402
from kpose.models import create_model  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[1] / "training" / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def test_configs_exist_for_every_paper_setting():
    names = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS}
    for required in (
        "coco/srpose_resnet50_256x192.yaml",
        "coco/srpose_hrnet_w32_384x288.yaml",
        "coco/simmr/mrfeanet2_resnet152_256x192.yaml",
        "mpii/srpose_resnet50_256x256.yaml",
        "crowdpose/srpose_hrnet_w32_256x192.yaml",
        "edge/srhead_mobilenetv3_large_256x192.yaml",
    ):
        assert required in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_config_loads_and_builds(path):
    config = load_config(path, check_paths=False)
    schema = get_schema(config.data.schema)
    model = create_model(
        config.model.name, schema=schema, input_size=config.model.input_size, weights=None, **config.model.options
    )
    assert model.output["heatmaps"].shape[-1] == schema.num_keypoints
    assert all(milestone < config.train.epochs for milestone in config.train.optimizer.milestones)
