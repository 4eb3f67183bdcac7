from dataclasses import dataclass, field
from typing import Literal

import pytest

from kpose.errors import ConfigError
from kpose.utils import dataclass_yaml


@dataclass
class Optim:
    learning_rate: float = 1e-3
    milestones: tuple[int, ...] = ()


@dataclass
class Root:
    name: str
    size: tuple[int, int] = (256, 192)
    precision: Literal["float32", "mixed_float16"] = "float32"
    optimizer: Optim = field(default_factory=Optim)
    boxes: str | None = None
    weights: dict[str, float] = field(default_factory=dict)


def test_builds_nested_and_converts_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nsize: [128, 96]\noptimizer: {learning_rate: 5, milestones: [170, 200]}\nweights: {lr: 1.0e-4}\n")
    cfg = dataclass_yaml.load(Root, path)
    assert cfg == Root("a", (128, 96), "float32", Optim(5.0, (170, 200)), None, {"lr": 1e-4})
    assert dataclass_yaml.build(Root, dataclass_yaml.to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "text,message",
    [
        ("name: a\nsizee: [1, 2]\n", "unknown key sizee"),
        ("name: a\noptimizer: {lr: 1}\n", "unknown key optimizer.lr; valid keys under optimizer"),
        ("size: [1, 2]\n", "missing required key name"),
        ("name: a\nsize: [1, 2, 3]\n", "size: expected 2 values"),
        ("name: a\noptimizer: {learning_rate: fast}\n", "optimizer.learning_rate: expected a number, got 'fast'"),
        ("name: a\nprecision: float16\n", r"precision: expected one of \['float32', 'mixed_float16'\]"),
        ("name: [\n", "not valid YAML"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        dataclass_yaml.load(Root, path)
    assert str(path) in str(info.value)
