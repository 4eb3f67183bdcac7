"""The metadata contract of an exported kpose model: the :class:`ModelMetadata` document, the
key it travels under (:data:`METADATA_KEY`) and its layout version (:data:`FORMAT_VERSION`).
No TensorFlow: the device runtime reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from kpose.errors import KposeError
from kpose.keypoints import KeypointSchema, schema_from_dict

METADATA_KEY = "kpose"
# ``ModelMetadata.task`` values.
TOPDOWN, BOTTOMUP = "topdown", "bottomup"
FORMAT_VERSION = 1


class MetadataError(KposeError):
    """A file is not an exported kpose model, or its metadata is malformed."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a device needs to know to run an exported model.

    Attributes:
        model_name: the kpose model name, e.g. ``"srhead_mobilenetv3_small"``.
        schema: the keypoint schema as :meth:`KeypointSchema.to_dict` gives it.
        input_size: (H, W) of the crop the model takes, pixels.
        input_dtype: dtype of the ``image`` input (``"uint8"``), NHWC, RGB.
        normalization: how the graph normalizes the image inside (informational for devices:
            they feed raw RGB), e.g. ``{"mean": [...], "std": [...], "scale": 255.0}``.
        outputs: output names in the file (``"keypoints"``, ``"scores"``, optionally
            ``"heatmaps"``).
        decoder: decoder settings baked into the graph, e.g. ``{"name": "maxpool",
            "kernel": 4, "flip_test": false, "quarter_shift": false}``.
        heatmap_size: (h, w) of the heatmap the decoder reads.
        batch_size: fixed batch size of the ``image`` input, or None if dynamic.
        quantization: ``"none"``, ``"fp16"``, ``"dynamic"``, ``"int8"``, ``"int16x8"`` or
            ``"qat"``.
        kpose_version: version of kpose that wrote the file.
        format_version: version of this metadata layout.
        extra: anything else the exporter wants to record (free-form, JSON-serializable).
    """

    model_name: str
    schema: Mapping[str, Any]
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    input_dtype: str = "uint8"
    normalization: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("keypoints", "scores")
    decoder: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = 1
    quantization: str = "none"
    kpose_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keypoint_schema(self) -> KeypointSchema:
        """The schema as a :class:`KeypointSchema`."""
        return schema_from_dict(self.schema, source=f"metadata of {self.model_name}")

    @property
    def task(self) -> str:
        """``"bottomup"`` for a file of keypoint candidates (decoder ``"bottomup"``: a whole
        image in, people grouped on the device), else ``"topdown"`` (one crop per person)."""
        return BOTTOMUP if self.decoder.get("name") == BOTTOMUP else TOPDOWN

    def output_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """The shape of each output for ``batch`` inputs (all float32): top-down ``keypoints``
        ``(B, K, 2)``, ``scores`` ``(B, K)`` and optionally ``heatmaps`` ``(B, h, w, K)``;
        bottom-up ``candidates`` ``(B, K, M, 2)``, ``candidate_scores`` and
        ``candidate_tags`` ``(B, K, M)`` with ``M = decoder["top_k"]``."""
        k = self.keypoint_schema.num_keypoints
        if self.task == BOTTOMUP:
            m = int(self.decoder["top_k"])
            return {"candidates": (batch, k, m, 2), "candidate_scores": (batch, k, m), "candidate_tags": (batch, k, m)}
        shapes = {"keypoints": (batch, k, 2), "scores": (batch, k)}
        if "heatmaps" in self.outputs:
            shapes["heatmaps"] = (batch, *self.heatmap_size, k)
        return shapes

    def to_json(self) -> str:
        """The metadata as one JSON document (what the exporter embeds)."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["heatmap_size"] = list(self.heatmap_size)
        data["outputs"] = list(self.outputs)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<metadata>") -> "ModelMetadata":
        """Parse and validate an embedded document; errors name ``source`` and the field."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetadataError(f"{source}: kpose metadata is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise MetadataError(f"{source}: kpose metadata must be a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise MetadataError(
                f"{source}: kpose metadata format_version {version!r} is not supported "
                f"(this kpose reads up to {FORMAT_VERSION}); upgrade kpose"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetadataError(f"{source}: unknown kpose metadata field(s) {unknown}")
        for name in ("model_name", "schema", "input_size", "heatmap_size"):
            if name not in data:
                raise MetadataError(f"{source}: kpose metadata lacks field {name!r}")
        for name in ("input_size", "heatmap_size"):
            size = data[name]
            if (
                not isinstance(size, list)
                or len(size) != 2
                or not all(isinstance(v, int) and v > 0 for v in size)
            ):
                raise MetadataError(f"{source}: metadata field {name!r} must be [H, W], got {size!r}")
            data[name] = tuple(size)
        data["outputs"] = tuple(data.get("outputs", ("keypoints", "scores")))
        metadata = cls(**data)
        metadata.keypoint_schema  # validates the schema, naming the source
        return metadata
