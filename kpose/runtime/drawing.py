"""Drawing on BGR images: one person's keypoints and skeleton by schema colours, the
runtime's people with boxes and track ids, a frames-per-second / per-stage latency overlay,
and a grid of tiles. numpy and OpenCV only (training previews use it too).

Colours are BGR (OpenCV order); pass an RGB image and they come out swapped unless the
caller converts."""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from kpose.keypoints import KeypointSchema
from kpose.runtime.estimator import Person

BOX_COLOR = (0, 200, 255)  # BGR
TEXT_COLOR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    schema: KeypointSchema,
    scores: np.ndarray | None = None,
    threshold: float = 0.0,
    radius: int | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw one person's keypoints and skeleton on a copy of ``image``.

    Args:
        image: ``(H, W, 3)`` uint8.
        keypoints: ``(K, 2)`` pixels (x, y), pixel centres at integers.
        schema: gives the skeleton and the colours (``schema.colors``, ``limb_colors()``).
        scores: ``(K,)`` confidences or visibility weights; a keypoint is drawn if its score
            is above ``threshold`` and a limb if both ends are. None draws all.
        threshold: see ``scores``.
        radius, thickness: in pixels; default scales with the image size.

    Returns:
        The drawn ``(H, W, 3)`` uint8 copy.
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    keypoints = np.asarray(keypoints, dtype=np.float64)
    shown = np.ones(len(keypoints), bool) if scores is None else np.asarray(scores) > threshold
    shown &= np.isfinite(keypoints).all(axis=1)
    size = min(out.shape[:2])
    radius = radius or max(2, size // 80)
    thickness = thickness or max(1, size // 160)
    shift = 4
    pts = np.round(np.nan_to_num(keypoints) * (1 << shift)).astype(np.int64)
    for (a, b), color in zip(schema.skeleton, schema.limb_colors()):
        if shown[a] and shown[b]:
            start, end = tuple(map(int, pts[a])), tuple(map(int, pts[b]))
            cv2.line(out, start, end, color, thickness, cv2.LINE_AA, shift)
    for i in np.flatnonzero(shown):
        center = tuple(map(int, pts[i]))
        cv2.circle(out, center, (radius + 1) << shift, (0, 0, 0), -1, cv2.LINE_AA, shift)
        cv2.circle(out, center, radius << shift, schema.colors[i], -1, cv2.LINE_AA, shift)
    return out


def make_grid(images: Sequence[np.ndarray], columns: int, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` images row by row into one image, ``gap`` px apart."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    h, w = images[0].shape[:2]
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), fill, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return grid


def _label(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45) -> None:
    """White text on a black outline at ``origin`` (bottom-left, pixels), in place."""
    cv2.putText(image, text, origin, FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def draw_people(
    image: np.ndarray,
    people: Sequence[Person],
    schema: KeypointSchema,
    threshold: float = 0.3,
    boxes: bool = False,
) -> np.ndarray:
    """Draw each person's skeleton and keypoints (those scoring above ``threshold``).

    Args:
        image: ``(H, W, 3)`` uint8 BGR.
        people: results in ``image`` pixels.
        schema: skeleton and BGR colours.
        boxes: also draw each crop box and track id.

    Returns:
        The drawn copy; ``image`` itself when there is nobody to draw.
    """
    for person in people:
        image = draw_keypoints(image, person.keypoints, schema, person.scores, threshold)
        if boxes:
            x, y, w, h = (int(round(v)) for v in person.box)
            cv2.rectangle(image, (x, y), (x + w, y + h), BOX_COLOR, 1)
            if person.track_id is not None:
                _label(image, f"#{person.track_id}", (x + 3, y + 15))
    return image


def draw_overlay(image: np.ndarray, fps: float, timings_ms: Mapping[str, float]) -> np.ndarray:
    """Write frames per second and each stage's latency (ms) in the top-left corner, in place.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, drawn on in place.
        fps: frames per second to show.
        timings_ms: stage name -> milliseconds, in display order.
    """
    lines = [f"{fps:5.1f} fps"] + [f"{name:<6} {ms:5.1f} ms" for name, ms in timings_ms.items()]
    for i, line in enumerate(lines):
        _label(image, line, (8, 18 + 17 * i))
    return image
