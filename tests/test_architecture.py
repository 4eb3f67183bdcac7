"""The house's layering (docs/design.md, "Layers"), read from the source: every import of a
kpose module, at module level or inside a function, points down the layers; the device
packages import no TensorFlow, no Keras and nothing of the training side."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kpose"

# Lowest first; a package may import its own layer and the layers below it.
LAYERS = (
    ("errors", "utils", "keypoints", "geometry"),
    ("codecs",),
    ("metadata",),
    ("runtime",),
    ("models",),
    ("data",),
    ("evaluation",),
    ("engine",),
    ("export",),
    ("tasks",),
    ("interop", "prepare", "quickstart", "api"),
    ("benchmarks",),
    ("cli",),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
DEVICE_PACKAGES = ("runtime", "metadata")
TRAINING_SIDE = {"models", "data", "evaluation", "engine", "export", "tasks"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every absolute or relative module name ``path`` imports, wherever the import sits."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def subpackage(name: str) -> str | None:
    """``kpose.engine.training`` -> ``engine``; ``kpose.api`` -> ``api``; the root and non-kpose
    names -> None."""
    parts = name.split(".")
    if parts[0] != "kpose" or len(parts) < 2:
        return None
    return parts[1]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_subpackage_has_a_layer() -> None:
    found = {subpackage(module_name(path)) for path in MODULES} - {None, "__main__"}
    assert found <= set(LAYER_OF), f"place {sorted(found - set(LAYER_OF))} in LAYERS and docs/design.md"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_point_down_the_layers(path: Path) -> None:
    own = subpackage(module_name(path))
    if own is None:
        return
    upward = sorted(
        name for name in imported(path)
        if (other := subpackage(name)) in LAYER_OF and LAYER_OF[other] > LAYER_OF[own]
    )
    assert not upward, f"{module_name(path)} (layer {own}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("package", DEVICE_PACKAGES)
def test_device_packages_import_no_tensorflow_and_nothing_of_training(package: str) -> None:
    for path in sorted((PACKAGE / package).rglob("*.py")):
        names = imported(path)
        frameworks = sorted(n for n in names if n.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
        training = sorted(n for n in names if subpackage(n) in TRAINING_SIDE)
        assert not frameworks and not training, f"{module_name(path)} imports {frameworks + training}"
