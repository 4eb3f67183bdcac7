"""A synthetic COCO-format keypoint dataset: articulated figures drawn with OpenCV.

Every image holds a few figures (:mod:`kpose.data.figures`) over a cluttered background,
with partial occlusion (other figures, random objects) and truncation at the borders. Each
keypoint is drawn as a disc of its own colour (:func:`joint_colors`) exactly at the annotated
position, so the labels can be checked on the pixels:

* ``v = 2``: the disc shows at its centre pixel and the eight around it;
* ``v = 1``: inside the image but hidden (behind a nearer limb, the head, another figure or
  an object), position still exact;
* ``v = 0``: outside the image (truncated); stored as ``(0, 0, 0)`` as COCO does.

Boxes are the extent of each figure's visible pixels and ``area`` their count, as COCO's
come from segmentations. A detection file gives every annotated person a jittered box with
a score, plus a few low-scoring false positives. Files: ``images/<split>/<id:012d>.jpg``,
``annotations/person_keypoints_<split>.json``, ``annotations/person_detections_<split>.json``.

This module imports numpy and OpenCV only.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kpose.data.figures import (
    BOTTOM,
    FEATURE,
    HAIR,
    NUM_MATERIALS,
    SHOES,
    SKIN,
    TOP,
    Figure,
    Part,
    figure_model,
)
from kpose.keypoints import KeypointSchema, get_schema

JPEG_QUALITY = 90
OCCLUDER = np.uint16(0xFFFF)  # label of pixels painted by objects in front of people
_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class SyntheticSet:
    """Where :func:`write_synthetic_coco` put its files."""

    root: Path
    image_dir: Path
    annotation_file: Path
    detection_file: Path
    schema: KeypointSchema
    num_images: int


def joint_colors(num_keypoints: int) -> np.ndarray:
    """``(K, 3)`` uint8 BGR colours of the keypoint discs: saturated, evenly spaced hues.

    Consecutive keypoints (often neighbours on the body) get hues far apart.
    """
    step = max(1, round(num_keypoints * 0.382))  # a golden-ratio stride around the hue circle
    while np.gcd(step, num_keypoints) != 1:
        step += 1
    hues = (np.arange(num_keypoints) * step % num_keypoints * 180.0 / num_keypoints).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 255), np.full_like(hues, 255)], axis=-1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Gradient, clutter shapes and low-frequency texture, BGR uint8 ``(H, W, 3)``."""
    a, b = rng.uniform(0, 255, (2, 3))
    ramp = np.linspace(0.0, 1.0, height if rng.random() < 0.5 else width, dtype=np.float32)
    ramp = ramp[:, None, None] if len(ramp) == height else ramp[None, :, None]
    image = np.broadcast_to(a + (b - a) * ramp, (height, width, 3)).astype(np.float32)
    blotches = cv2.resize(
        rng.normal(0, 18, (height // 24 + 2, width // 24 + 2, 3)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    image = np.clip(image + blotches, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(15, 40))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
        size = rng.uniform(0.02, 0.3) * height
        shape = rng.integers(0, 4)
        if shape == 0:
            corner = (int(x + size), int(y + size * rng.uniform(0.3, 3)))
            cv2.rectangle(image, (int(x), int(y)), corner, color, -1)
        elif shape == 1:
            cv2.circle(image, (int(x), int(y)), int(size / 2), color, -1, cv2.LINE_AA)
        elif shape == 2:
            end = (int(x + rng.normal(0, size * 2)), int(y + rng.normal(0, size * 2)))
            cv2.line(image, (int(x), int(y)), end, color, int(rng.integers(1, 8)), cv2.LINE_AA)
        else:
            pts = (np.array([x, y]) + rng.normal(0, size, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(image, [pts], color, cv2.LINE_AA)
    return image


class _Materials:
    """Per-figure colours and patterns: skin tones, clothes (plain, stripes, checks, noise)."""

    def __init__(self, rng: np.random.Generator) -> None:
        skin = np.array([[60, 90, 140], [90, 140, 200], [140, 180, 230], [40, 60, 90]], np.float32)
        self.base = np.empty((NUM_MATERIALS, 3), np.float32)
        self.base[SKIN] = skin[rng.integers(len(skin))] + rng.normal(0, 10, 3)
        hsv = np.stack([rng.integers(0, 180, 3), rng.integers(30, 180, 3), rng.integers(50, 230, 3)], -1)
        top, bottom, shoes = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2BGR)[0].astype(np.float32)
        self.base[TOP], self.base[BOTTOM], self.base[SHOES] = top, bottom, shoes
        self.base[HAIR] = rng.uniform(10, 90) * np.array([1.0, 1.1, 1.3])
        self.base[FEATURE] = (20, 20, 30)
        self.pattern = {TOP: int(rng.integers(0, 4)), BOTTOM: int(rng.integers(0, 4))}
        self.period = rng.uniform(4, 14)
        self.angle = rng.uniform(0, np.pi)
        self.accent = rng.uniform(-70, 70, 3).astype(np.float32)

    def paint(self, material: int, x0: int, y0: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """``(h, w, 3)`` float32 colours of ``material`` over the image patch at ``(x0, y0)``."""
        color = np.broadcast_to(self.base[material], (h, w, 3))
        pattern = self.pattern.get(material, 0)
        if pattern == 0:
            return color
        ys, xs = np.mgrid[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
        if pattern == 1:  # stripes
            on = (xs * np.cos(self.angle) + ys * np.sin(self.angle)) // self.period % 2
        elif pattern == 2:  # checks
            on = (xs // self.period + ys // self.period) % 2
        else:  # mottled
            return color + rng.normal(0, 14, (h, w, 1)).astype(np.float32)
        return color + on[..., None] * self.accent


def _draw(canvas: np.ndarray, part: Part, value: int | tuple, origin: tuple[int, int]) -> None:
    """Draw ``part`` filled with ``value`` on ``canvas`` whose pixel (0, 0) is image ``origin``."""
    pts = np.round((part.points - origin) * _ONE).astype(np.int32)
    radius = int(round(part.radius * _ONE))
    if part.kind == "polygon":
        cv2.fillConvexPoly(canvas, pts, value, cv2.LINE_8, _SHIFT)
    elif part.kind == "capsule":
        thickness = max(1, int(round(2 * part.radius)))
        cv2.line(canvas, tuple(pts[0]), tuple(pts[1]), value, thickness, cv2.LINE_8, _SHIFT)
    else:
        cv2.circle(canvas, tuple(pts[0]), radius, value, -1, cv2.LINE_8, _SHIFT)


def _paint_figure(
    image: np.ndarray,
    labels: np.ndarray,
    figure: Figure,
    label_base: int,
    colors: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Paint ``figure`` far to near into ``image`` and its labels into ``labels`` (in place).

    Labels: ``label_base + k`` for the disc of keypoint ``k``, ``label_base + K`` for the body.
    """
    height, width = labels.shape
    materials = _Materials(rng)
    body_label = label_base + len(colors)
    for part in sorted(figure.parts, key=lambda p: -p.depth):
        lo = np.floor(part.points.min(axis=0) - part.radius - 1).astype(int)
        hi = np.ceil(part.points.max(axis=0) + part.radius + 2).astype(int)
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], width), min(hi[1], height)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _draw(mask, part, 1, (x0, y0))
        on = mask.astype(bool)
        if part.kind == "marker":
            image[y0:y1, x0:x1][on] = colors[part.keypoint]
            labels[y0:y1, x0:x1][on] = label_base + part.keypoint
        else:
            paint = materials.paint(part.material, x0, y0, y1 - y0, x1 - x0, rng)
            image[y0:y1, x0:x1][on] = np.clip(paint[on], 0, 255)
            labels[y0:y1, x0:x1][on] = body_label


def _paint_occluders(
    image: np.ndarray, labels: np.ndarray, figures: list[Figure], rng: np.random.Generator
) -> None:
    """A few objects in front of the figures, placed over random joints (in place)."""
    for _ in range(int(rng.poisson(0.8))):
        fig = figures[int(rng.integers(len(figures)))]
        cx, cy = fig.keypoints[int(rng.integers(len(fig.keypoints)))] + rng.normal(0, 0.1 * fig.height, 2)
        w, h = rng.uniform(0.08, 0.3, 2) * fig.height
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = ((float(cx), float(cy)), (float(w), float(h)), float(rng.uniform(0, 180)))
        ellipse = rng.random() < 0.5
        for canvas, value in ((image, color), (labels, int(OCCLUDER))):
            if ellipse:
                cv2.ellipse(canvas, box, value, -1, cv2.LINE_8)
            else:
                cv2.fillConvexPoly(canvas, cv2.boxPoints(box).astype(np.int32), value, cv2.LINE_8)


def _annotate(figure: Figure, labels: np.ndarray, label_base: int) -> dict | None:
    """COCO annotation of a painted figure (no ids), or None if none of it is visible."""
    k = len(figure.keypoints)
    height, width = labels.shape
    mine = (labels >= label_base) & (labels <= label_base + k)
    area = int(mine.sum())
    if area == 0:
        return None
    rows, cols = np.flatnonzero(mine.any(axis=1)), np.flatnonzero(mine.any(axis=0))
    bbox = [cols[0] - 0.5, rows[0] - 0.5, float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
    keypoints = []
    for j, (x, y) in enumerate(figure.keypoints):
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < width and 0 <= yi < height):
            keypoints += [0.0, 0.0, 0]
            continue
        around = labels[max(yi - 1, 0) : yi + 2, max(xi - 1, 0) : xi + 2]
        visible = bool((around == label_base + j).all())  # the disc shows around its centre
        keypoints += [round(float(x), 2), round(float(y), 2), 2 if visible else 1]
    return {
        "keypoints": keypoints,
        "num_keypoints": int(sum(v > 0 for v in keypoints[2::3])),
        "bbox": [round(float(v), 2) for v in bbox],
        "area": float(area),
        "iscrowd": 0,
        "category_id": 1,
    }


def render_image(
    rng: np.random.Generator,
    schema: KeypointSchema,
    image_size: tuple[int, int] = (480, 640),
) -> tuple[np.ndarray, list[dict]]:
    """One synthetic image and its person annotations.

    Returns:
        ``(H, W, 3)`` uint8 BGR image and COCO annotation dicts (no ``id``/``image_id``).
    """
    height, width = image_size
    image = _background(rng, height, width)
    labels = np.zeros((height, width), np.uint16)
    model = figure_model(schema)
    colors = joint_colors(schema.num_keypoints)
    count = int(rng.choice([1, 2, 3, 4, 5, 6], p=[0.25, 0.25, 0.2, 0.15, 0.1, 0.05]))
    sizes = np.sort(np.exp(rng.uniform(np.log(0.15), np.log(1.1), count)) * height)
    figures = []
    for size in sizes:  # small (far) figures first, so nearer ones overlap them
        anchor = np.array([rng.uniform(-0.05, 1.05) * width, rng.uniform(0.2, 0.9) * height])
        figures.append(model.sample(rng, float(size), anchor))
    stride = schema.num_keypoints + 1
    for i, figure in enumerate(figures):
        _paint_figure(image, labels, figure, 1 + i * stride, colors, rng)
    _paint_occluders(image, labels, figures, rng)
    noise = rng.normal(0, 8.0, image.shape).astype(np.float32)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    annotations = [_annotate(fig, labels, 1 + i * stride) for i, fig in enumerate(figures)]
    return image, [a for a in annotations if a is not None]


def _detections(rng: np.random.Generator, annotations: list[dict], image_size: tuple[int, int]) -> list[dict]:
    """Jittered boxes with scores for ``annotations``, plus some false positives."""
    height, width = image_size
    out = []
    for ann in annotations:
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0, 0.06, 4)
        x1, y1 = x + jitter[0] * w, y + jitter[1] * h
        x2, y2 = x + w + jitter[2] * w, y + h + jitter[3] * h
        score = float(np.clip(0.97 - 2.0 * np.abs(jitter).mean() + rng.normal(0, 0.04), 0.3, 1.0))
        out.append({"bbox": [x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)], "score": score})
    if rng.random() < 0.3:
        w, h = rng.uniform(20, 0.5 * width), rng.uniform(40, 0.8 * height)
        box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
        out.append({"bbox": box, "score": float(rng.uniform(0.05, 0.4))})
    return [
        {"category_id": 1, "bbox": [round(float(v), 2) for v in d["bbox"]], "score": round(d["score"], 4)}
        for d in out
    ]


def write_synthetic_coco(
    out_dir: str | Path,
    num_images: int,
    schema: str | Path | KeypointSchema = "coco",
    seed: int = 0,
    image_size: tuple[int, int] = (480, 640),
    split: str = "train",
) -> SyntheticSet:
    """Write ``num_images`` synthetic JPEGs with COCO keypoint and detection files.

    Args:
        out_dir: root folder (created); files go under ``images/`` and ``annotations/``.
        num_images: how many images.
        schema: keypoint schema (name, file or object); keypoints that all name body parts
            get human figures, others a layout of the schema's skeleton graph.
        seed: the same ``(seed, split)`` writes the same files.
        image_size: ``(height, width)`` pixels.
        split: name used in the file names; different splits draw different images.

    Returns:
        A :class:`SyntheticSet` with the paths.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    schema = get_schema(schema)
    root = Path(out_dir)
    image_dir = root / "images" / split
    ann_dir = root / "annotations"
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    height, width = image_size
    images, annotations, detections = [], [], []
    for image_id in range(1, num_images + 1):
        image, anns = render_image(rng, schema, image_size)
        file_name = f"{image_id:012d}.jpg"
        cv2.imwrite(str(image_dir / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for ann in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
        detections += [{"image_id": image_id, **d} for d in _detections(rng, anns, image_size)]
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(schema.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in schema.skeleton],  # 1-based, as COCO writes it
    }
    dataset = {
        "info": {"description": f"kpose synthetic {schema.name} keypoints, seed {seed}, split {split}"},
        "images": images,
        "annotations": annotations,
        "categories": [category],
    }
    annotation_file = ann_dir / f"person_keypoints_{split}.json"
    detection_file = ann_dir / f"person_detections_{split}.json"
    annotation_file.write_text(json.dumps(dataset))
    detection_file.write_text(json.dumps(detections))
    return SyntheticSet(root, image_dir, annotation_file, detection_file, schema, num_images)
