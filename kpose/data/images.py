"""A fast look at image files before training: size, format, and whether they are whole.

JPEG and PNG are checked from their headers and trailers without decoding (a few hundred
bytes per file): a missing file, a bad header or a truncated file (no JPEG EOI / PNG IEND)
counts as unreadable. Other formats are decoded once with OpenCV. numpy/OpenCV only.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from kpose.data.samples import PersonSamples
from kpose.errors import KposeError

log = logging.getLogger("kpose.data")

JPEG, PNG, OTHER = 0, 1, 2
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
# Start-of-frame markers carry the image size (all SOFn except DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_TAIL = 1024


@dataclass(frozen=True)
class ImageInfo:
    """``height`` and ``width`` in pixels and ``kind`` (JPEG, PNG or OTHER); ``error`` if unreadable."""

    height: int = 0
    width: int = 0
    kind: int = OTHER
    error: str = ""


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """(height, width) from the SOF segment of a JPEG whose first bytes are ``head``."""
    pos = 2
    while pos + 9 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return height, width
        pos += 2 + length
    return None


def probe_image(path: str) -> ImageInfo:
    """Size and format of one image file, or the reason it cannot be used."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
            f.seek(0, 2)
            f.seek(max(f.tell() - _TAIL, 0))
            tail = f.read()
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError)
        return ImageInfo(error="missing" if missing else f"unreadable ({exc.strerror})")
    if head[:3] == b"\xff\xd8\xff":
        size = _jpeg_size(head)
        if size is None or min(size) == 0:
            return ImageInfo(kind=JPEG, error="corrupt (bad JPEG header)")
        if b"\xff\xd9" not in tail:
            return ImageInfo(kind=JPEG, error="corrupt (truncated JPEG)")
        return ImageInfo(*size, kind=JPEG)
    if head[:8] == _PNG_SIGNATURE:
        width, height = struct.unpack(">II", head[16:24]) if len(head) >= 24 else (0, 0)
        if min(width, height) == 0:
            return ImageInfo(kind=PNG, error="corrupt (bad PNG header)")
        if _PNG_IEND not in tail:
            return ImageInfo(kind=PNG, error="corrupt (truncated PNG)")
        return ImageInfo(height, width, kind=PNG)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return ImageInfo(error="corrupt (not a decodable image)")
    return ImageInfo(image.shape[0], image.shape[1], kind=OTHER)


@dataclass(frozen=True)
class ProbedSamples:
    """Samples whose images are readable, with per-row image facts.

    Attributes:
        samples: the rows kept.
        rows: ``(N,)`` int64 index of each kept row in the table that was probed.
        sizes: ``(N, 2)`` int32 image ``(height, width)``.
        kinds: ``(N,)`` int32 JPEG, PNG or OTHER.
    """

    samples: PersonSamples
    rows: np.ndarray
    sizes: np.ndarray
    kinds: np.ndarray


def probe_samples(samples: PersonSamples, workers: int = 8) -> ProbedSamples:
    """Probe every distinct image of ``samples``; drop rows whose image is unusable.

    Unusable images are counted by reason and logged (warning) with a few of their paths.

    Raises:
        KposeError: if no image is usable, with the counts.
    """
    paths, inverse = np.unique(samples.image_paths.astype(str), return_inverse=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        infos = list(pool.map(probe_image, paths))
    bad = np.array([bool(info.error) for info in infos])
    if bad.any():
        reasons = Counter(info.error.split(" (")[0] for info in infos if info.error)
        shown = [f"{p}: {i.error}" for p, i in zip(paths, infos) if i.error][:3]
        log.warning(
            "%s: skipping %d of %d images (%s), %d person rows; e.g. %s",
            samples.source or "samples",
            int(bad.sum()),
            len(paths),
            ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())),
            int(bad[inverse].sum()),
            "; ".join(shown),
        )
    keep = ~bad[inverse]
    if not keep.any():
        raise KposeError(
            f"{samples.source or 'samples'}: none of the {len(paths)} images can be read "
            f"(first: {paths[0]}: {infos[0].error})"
        )
    rows = np.flatnonzero(keep)
    sizes = np.array([(i.height, i.width) for i in infos], np.int32)[inverse[rows]]
    kinds = np.array([i.kind for i in infos], np.int32)[inverse[rows]]
    return ProbedSamples(samples.select(rows), rows.astype(np.int64), sizes, kinds)
