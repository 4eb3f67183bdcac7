"""``kpose predict``: poses in an image, a folder of images or a video, with any kpose model.

    kpose predict SOURCE --model FILE.keras|.tflite|.onnx [--save OUT] [--json]
                  [--threshold 0.3] [--threads N] [--boxes whole|hog]

SOURCE is an image, a folder (its images in name order; other files are ignored, and an
image that does not decode is skipped, named on stderr and counted in the summary) or a
video file. A top-down model estimates one person per box: the whole image (``--boxes
whole``) or each box of OpenCV's HOG people detector (``--boxes hog``); a bottom-up model
finds every person itself. The model is loaded with :func:`kpose.load`: exported files need
no TensorFlow, a ``.keras`` file runs in TensorFlow.

``--save OUT`` writes the drawn results: for one image an image file, or a folder to write
it into; for a folder a folder (same file names); for a video an ``.mp4`` (or ``.avi``).
``--json`` prints one JSON line per image or video frame on stdout, keypoints and boxes in
image pixels::

    {"source": "a.jpg", "people": [{"box": [x, y, w, h], "keypoints": [[x, y, score], ...], "score": 0.61}]}

(a video's lines also have ``"frame": i``, counting from 0). Without ``--json`` each image or
frame gets one line saying how many people it has. The last line (on stderr with
``--json``) sums up.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from kpose.errors import KposeError

if TYPE_CHECKING:
    import numpy as np

    from kpose.runtime import BottomUpPipeline, Person, PosePipeline

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
SAVED_VIDEO_SUFFIXES = (".mp4", ".avi")  # what kpose.runtime.VideoSink writes
BOXES = {"whole": "full", "hog": "hog"}  # --boxes -> kpose.runtime.demo.make_box_source's name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="poses in an image, a folder of images or a video, with a .keras, .tflite or .onnx model",
        description="Estimate poses with any kpose model file; print them (--json) and draw them (--save).",
    )
    parser.add_argument("source", type=Path, metavar="SOURCE", help="an image, a folder of images or a video file")
    parser.add_argument(
        "--model", type=Path, required=True, metavar="FILE", help="a trained .keras model or an exported .tflite / .onnx"
    )
    parser.add_argument(
        "--save", type=Path, metavar="OUT",
        help="write the drawn results: an image file or folder (one image), a folder (a folder), an .mp4 (a video)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per image or frame on stdout")
    parser.add_argument("--threshold", type=float, default=0.3, help="keypoint score drawn (default 0.3)")
    parser.add_argument(
        "--threads", type=int, help="interpreter CPU threads for .tflite / .onnx (default: the interpreter's choice)"
    )
    parser.add_argument(
        "--boxes", choices=tuple(BOXES), default="whole",
        help="top-down models: the person boxes, the whole image or OpenCV's HOG people detector (default: whole)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kpose.api import load
    from kpose.runtime.demo import make_pipeline

    if args.threads is not None and args.threads < 1:
        raise KposeError(f"--threads must be >= 1, got {args.threads}")
    kind = source_kind(args.source)
    if kind == "video":
        check_video_output(args.save)
        predict = partial(predict_video, source=args.source, save=args.save)
    else:
        predict = partial(predict_images, jobs=image_outputs(args.source, kind, args.save), single=kind == "image")
    estimator = load(args.model, threads=args.threads)
    pipeline = make_pipeline(
        estimator, BOXES[args.boxes], threshold=args.threshold, smooth=False, draw=args.save is not None
    )
    summary = predict(pipeline, show=report_json if args.json else report_text)
    saved = f", drawn results in {args.save}" if args.save else ""
    print(f"kpose predict: {summary}{saved}", file=sys.stderr if args.json else sys.stdout)
    return 0


def source_kind(source: Path) -> str:
    """``"image"``, ``"folder"`` or ``"video"``, by what ``source`` is and its suffix."""
    if source.is_dir():
        return "folder"
    if not source.is_file():
        raise KposeError(f"{source}: no such image, folder or video")
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise KposeError(
        f"{source}: neither an image ({' '.join(IMAGE_SUFFIXES)}) nor a video ({' '.join(VIDEO_SUFFIXES)})"
    )


def image_outputs(source: Path, kind: str, save: Path | None) -> list[tuple[Path, Path | None]]:
    """``(image, drawn output or None)`` pairs for an image or a folder; output folders made.

    One image is drawn to ``save`` itself when that names an image file, else into the folder
    ``save``; a folder's images go into the folder ``save``, under their own names.

    Raises:
        KposeError: a folder without images; an output that is not a folder, lies in no
            folder, or would overwrite its image.
    """
    if kind == "image":
        images = [source]
    else:
        images = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise KposeError(f"{source}: no images in this folder ({' '.join(IMAGE_SUFFIXES)})")
    if save is None:
        return [(image, None) for image in images]
    if kind == "image" and save.suffix.lower() in IMAGE_SUFFIXES and not save.is_dir():
        if not save.parent.is_dir():
            raise KposeError(f"--save {save}: folder {save.parent} does not exist")
        outputs = [save]
    elif save.exists() and not save.is_dir():
        raise KposeError(f"--save {save}: is a file; name a folder to write the drawn images into")
    else:
        save.mkdir(parents=True, exist_ok=True)
        outputs = [save / image.name for image in images]
    for image, output in zip(images, outputs):
        if output.resolve() == image.resolve():
            raise KposeError(f"--save {save}: would overwrite {image} with its drawing; save elsewhere")
    return list(zip(images, outputs))


def check_video_output(save: Path | None) -> None:
    """KposeError unless the drawn video goes to an ``.mp4`` / ``.avi`` file (or nowhere)."""
    if save is not None and save.suffix.lower() not in SAVED_VIDEO_SUFFIXES:
        raise KposeError(f"--save {save}: the drawn video must be a {' or '.join(SAVED_VIDEO_SUFFIXES)} file")


def predict_images(
    pipeline: PosePipeline | BottomUpPipeline,
    jobs: list[tuple[Path, Path | None]],
    single: bool,
    show: Callable[[str, int | None, list[Person]], None],
) -> str:
    """Run each image, show its people and write its drawing; the summary.

    An image that does not decode is an error for a ``single`` image, else skipped and named
    on stderr.
    """
    import cv2

    done, people, skipped = 0, 0, 0
    for image_path, output in jobs:
        image = read_image(image_path)
        if image is None:
            if single:
                raise KposeError(f"{image_path}: cannot read or decode this image")
            print(f"kpose predict: skipped {image_path}: cannot read or decode this image", file=sys.stderr)
            skipped += 1
            continue
        result = pipeline(image, 0.0)
        show(str(image_path), None, result.people)
        if output is not None and not cv2.imwrite(str(output), result.image):
            raise KposeError(f"--save {output}: OpenCV cannot write this image")
        done, people = done + 1, people + len(result.people)
    summary = f"{plural(done, 'image', 'images')}, {plural(people, 'person', 'people')}"
    return summary + (f", {skipped} skipped (cannot read or decode)" if skipped else "")


def read_image(path: Path) -> np.ndarray | None:
    """The image as ``(H, W, 3)`` uint8 BGR, or None if it cannot be read or decoded."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def predict_video(
    pipeline: PosePipeline | BottomUpPipeline,
    source: Path,
    save: Path | None,
    show: Callable[[str, int | None, list[Person]], None],
) -> str:
    """Run each frame of a video file, show its people and write the drawn video; the summary."""
    from kpose.runtime import VideoSink, VideoSource

    frames, people = 0, 0
    with VideoSource(str(source)) as video:
        sink = VideoSink(save, video.fps) if save is not None else None
        try:
            for index, frame in enumerate(video):
                result = pipeline(frame, index / video.fps)
                show(str(source), index, result.people)
                if sink is not None:
                    sink.write(result.image)
                frames, people = index + 1, people + len(result.people)
        finally:
            if sink is not None:
                sink.close()
    return f"{plural(frames, 'frame', 'frames')}, {plural(people, 'person', 'people')}"


def person_json(person: Person) -> dict:
    """``{"box": [x, y, w, h], "keypoints": [[x, y, score], ...], "score": mean score}``, image
    pixels rounded to 2 decimals."""
    data = person.to_json()
    del data["track_id"]
    return {**data, "score": round(person.score, 4)}


def report_json(source: str, frame: int | None, people: list[Person]) -> None:
    """One JSON line on stdout: ``source``, ``frame`` (videos) and the people."""
    line: dict = {"source": source}
    if frame is not None:
        line["frame"] = frame
    line["people"] = [person_json(person) for person in people]
    print(json.dumps(line), flush=True)


def report_text(source: str, frame: int | None, people: list[Person]) -> None:
    """One line on stdout: where, how many people and their mean keypoint scores."""
    where = source if frame is None else f"{source} frame {frame}"
    scores = f" (mean keypoint scores {', '.join(f'{p.score:.2f}' for p in people)})" if people else ""
    print(f"{where}: {plural(len(people), 'person', 'people')}{scores}")


def plural(count: int, one: str, many: str) -> str:
    """``"1 person"``, ``"2 people"``."""
    return f"{count} {one if count == 1 else many}"
