"""Drawing the runtime's results on BGR frames: skeletons by schema colours, boxes, and a
frames-per-second / per-stage latency overlay. numpy and OpenCV only."""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from kpose.data.draw import draw_keypoints
from kpose.keypoints import KeypointSchema
from kpose.runtime.estimator import Person

BOX_COLOR = (0, 200, 255)  # BGR
TEXT_COLOR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


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
