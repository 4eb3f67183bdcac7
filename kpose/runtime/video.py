"""Frames in and out: cameras, video files and streams; mp4 and JSON-lines writers; a window.

OpenCV only. Every failure to open something is a :class:`VideoError` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from kpose.errors import KposeError
from kpose.runtime.estimator import Person

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc


class VideoError(KposeError):
    """A camera, video file, stream or output cannot be opened, read or written."""


def parse_source(source: str | int) -> str | int:
    """A camera index (``0``, ``"1"``) as an int; a file path or stream URL as given."""
    if isinstance(source, int):
        return source
    text = str(source).strip()
    return int(text) if text.isdigit() else text


class VideoSource:
    """Frames from a camera index, a video file or a stream URL (anything OpenCV opens).

    Iterating yields ``(H, W, 3)`` uint8 BGR frames until the source ends; use it as a
    context manager (or call :meth:`close`) to release the device.

    Raises:
        VideoError: naming the source, if it does not open or its first frame does not decode.
    """

    def __init__(self, source: str | int):
        self.source = parse_source(source)
        is_file = isinstance(self.source, str) and "://" not in self.source
        if is_file and not Path(self.source).is_file():
            raise VideoError(f"--source {self.source}: no such video file")
        logging = cv2.utils.logging
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)  # our error says it; no backend warnings
        try:
            self._capture = cv2.VideoCapture(self.source)
        finally:
            logging.setLogLevel(level)
        if not self._capture.isOpened():
            what = "camera" if isinstance(self.source, int) else "video file" if is_file else "stream"
            raise VideoError(f"--source {self.source}: cannot open this {what}")
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self.close()
            raise VideoError(f"--source {self.source}: opened, but no frame could be read or decoded")
        self._first: np.ndarray | None = frame

    @property
    def fps(self) -> float:
        """Frame rate the source reports (30 if it reports none)."""
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        return float(fps) if fps and 1 <= fps <= 1000 else 30.0

    @property
    def frame_count(self) -> int | None:
        """Frames in a file, None for cameras and streams (or when unknown)."""
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 and not isinstance(self.source, int) else None

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end."""
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self._capture.read()
        return frame if ok else None

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoSink:
    """Writes BGR frames to an ``.mp4`` (mp4v) or ``.avi`` (MJPG); opens on the first frame."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise VideoError(f"--save {self.path}: folder {self.path.parent} does not exist")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame (all frames must share its size)."""
        if self._writer is None:
            fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            height, width = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height))
            if not self._writer.isOpened():
                raise VideoError(f"--save {self.path}: OpenCV cannot write this video ({fourcc})")
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class PoseLog:
    """One JSON line per frame: ``{"frame": i, "time_ms": t, "people": [Person.to_json(), ...]}``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise VideoError(f"--poses {self.path}: cannot write ({exc.strerror})") from exc

    def write(self, frame: int, time_ms: float, people: Sequence[Person]) -> None:
        line = {"frame": frame, "time_ms": round(time_ms, 2), "people": [p.to_json() for p in people]}
        self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self._file.close()


def read_pose_log(path: str | Path) -> list[dict]:
    """The lines of a :class:`PoseLog` file, parsed."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Window:
    """An OpenCV window; :meth:`show` returns False once q, Esc or the close button was used.

    Raises:
        VideoError: this OpenCV has no GUI (e.g. opencv-python-headless).
    """

    def __init__(self, title: str = "kpose"):
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise VideoError(
                f"this OpenCV ({cv2.__version__}) has no GUI to open a window (opencv-python-headless?): "
                "pass --no-window, or install opencv-python"
            ) from exc

    def show(self, frame: np.ndarray) -> bool:
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(1) & 0xFF
        return key not in QUIT_KEYS and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        cv2.destroyWindow(self.title)
