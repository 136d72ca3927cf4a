"""Frames for self-supervised pretraining, read on demand: a folder of images, a folder of
videos, or ami's HDF5 episodes.

Every source gives clips: `clip(item, start, frames, stride)` → (frames, S, S, C) uint8, square
(centre-cropped, then resized to `image_size`). An image is a clip of one frame; a video or an
episode gives `frames` frames `stride` apart. Nothing holds more than the clips asked for:
images are opened when drawn, videos are decoded from the keyframe before the clip, episodes are
read frame by frame from the file (`EpisodeStream`).

Videos need PyAV (`pip install 'ami[video]'`), imported only when a video folder is opened.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ami.errors import AmiError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _fit(img: Image.Image, size: int, channels: int) -> np.ndarray:
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size, size):
        img = ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
    a = np.asarray(img, np.uint8)
    return a[..., None] if channels == 1 else a


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


class ImageFolder:
    """PNG/JPEG files under a folder (recursively, sorted by path)."""

    kind = "images"

    def __init__(self, folder: Path, image_size: int = 64, channels: int = 3):
        self.folder, self.image_size, self.channels = Path(folder), image_size, channels
        self.files = _files(self.folder, IMAGE_SUFFIXES)
        if not self.files:
            raise AmiError(f"{folder}: no PNG or JPEG images in it")
        self.lengths = np.ones(len(self.files), np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def clip(self, item: int, start: int = 0, frames: int = 1, stride: int = 1) -> np.ndarray:
        path = self.files[item]
        try:
            with Image.open(path) as img:
                frame = _fit(img, self.image_size, self.channels)
        except OSError as e:
            raise AmiError(f"{path}: not a readable image ({e})") from None
        return frame[None]


class VideoFolder:
    """MP4 (and AVI, MOV, MKV, WebM) files under a folder, decoded with PyAV."""

    kind = "videos"

    def __init__(self, folder: Path, image_size: int = 64, channels: int = 3):
        self.av = _import_av()
        self.folder, self.image_size, self.channels = Path(folder), image_size, channels
        self.files = _files(self.folder, VIDEO_SUFFIXES)
        if not self.files:
            raise AmiError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)}) in it")
        self.lengths = np.array([self._count(p) for p in self.files], np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def _open(self, path: Path):
        try:
            return self.av.open(str(path))
        except self.av.FFmpegError as e:
            raise AmiError(f"{path}: not a readable video ({e})") from None

    def _count(self, path: Path) -> int:
        with self._open(path) as c:
            stream = c.streams.video[0]
            if stream.frames:  # from the container's index, without decoding
                return int(stream.frames)
            return sum(1 for _ in c.decode(stream))

    def clip(self, item: int, start: int = 0, frames: int = 1, stride: int = 1) -> np.ndarray:
        path, want = self.files[item], start + np.arange(frames) * stride
        out = np.empty((frames, self.image_size, self.image_size, self.channels), np.uint8)
        with self._open(path) as c:
            stream = c.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            first = stream.start_time or 0
            index_of = None
            if rate and stream.time_base and start > 0:
                # seek to the keyframe at or before the clip, then decode forward
                c.seek(first + int(start / rate / stream.time_base), stream=stream,
                       backward=True, any_frame=False)
                index_of = lambda f: int(round(float((f.pts - first) * stream.time_base * rate)))
            k, index = 0, -1
            for frame in c.decode(stream):
                index = index_of(frame) if index_of is not None and frame.pts is not None \
                    else index + 1
                while k < frames and index == want[k]:
                    out[k] = _fit(frame.to_image(), self.image_size, self.channels)
                    k += 1
                if k == frames or index > want[-1]:
                    break
        if k < frames:
            raise AmiError(f"{path}: frame {int(want[k])} could not be decoded "
                           f"({self.lengths[item]} frames counted)")
        return out


class EpisodeFrames:
    """The frames of an ami HDF5 episodes file, read on demand (with their states, if any)."""

    kind = "episodes"

    def __init__(self, path: Path, image_size: int = 0, channels: int = 0):
        from ami.data.stream import EpisodeStream
        self.stream = EpisodeStream.open(path)
        h, w, c = self.stream.image_shape
        if h != w:
            raise AmiError(f"{path}: images are {h}x{w}; the encoder needs square images")
        self.image_size, self.channels = image_size or h, channels or c
        if self.channels != c:
            raise AmiError(f"{path}: frames have {c} channels, not {self.channels}")
        self.lengths = self.stream.lengths
        self.world = self.stream.world

    def __len__(self) -> int:
        return self.stream.num_episodes

    def clip(self, item: int, start: int = 0, frames: int = 1, stride: int = 1) -> np.ndarray:
        idx = self.stream.starts[item] + start + np.arange(frames) * stride
        clip, _ = self.stream.take(idx[None], np.zeros((1, 0), np.int64))
        clip = clip[0]
        if self.image_size != clip.shape[1]:
            clip = np.stack([_fit(Image.fromarray(f.squeeze(-1) if self.channels == 1 else f),
                                  self.image_size, self.channels) for f in clip])
        return clip


def open_frames(path: str | Path, image_size: int = 0, channels: int = 0
                ) -> ImageFolder | VideoFolder | EpisodeFrames:
    """The source a path names: an HDF5 file of episodes, or a folder of images or of videos.
    image_size 0: the episodes' own size, 64 for folders; channels 0: the episodes' own, 3 for
    folders."""
    path = Path(path)
    if not path.exists():
        raise AmiError(f"{path}: no such file or folder")
    if path.is_file():
        return EpisodeFrames(path, image_size, channels)
    size, ch = image_size or 64, channels or 3
    if _files(path, VIDEO_SUFFIXES) and not _files(path, IMAGE_SUFFIXES):
        return VideoFolder(path, size, ch)
    return ImageFolder(path, size, ch)


def sample_clips(source, rng: np.random.Generator, batch: int, frames: int = 1,
                 stride: int = 1) -> np.ndarray:
    """(batch, frames, S, S, C) uint8: items drawn in proportion to their usable starts (every
    image once; every place a clip fits in a video or episode), a start uniform within each."""
    span = (frames - 1) * stride
    starts = np.maximum(np.asarray(source.lengths) - span, 0)
    if source.kind == "images":
        starts = np.ones_like(starts)
    if starts.sum() == 0:
        raise AmiError(f"no video or episode has the {span + 1} frames a clip of {frames} frames "
                       f"{stride} apart needs (longest: {int(np.max(source.lengths))})")
    items = rng.choice(len(starts), batch, p=starts / starts.sum())
    clips = []
    for i in items:
        if source.kind == "images":
            clips.append(np.repeat(source.clip(int(i)), frames, axis=0))
        else:
            clips.append(source.clip(int(i), int(rng.integers(starts[i])), frames, stride))
    return np.stack(clips)


def read_labels(path: Path, files: list[Path], folder: Path) -> np.ndarray:
    """Labels of an image folder from a CSV file with columns `file,label` (file relative to the
    folder); every image must have one. Returns strings, in the order of `files`."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r]
    except OSError as e:
        raise AmiError(f"{path}: cannot read labels ({e.strerror or e})") from None
    if rows and rows[0][:2] == ["file", "label"]:
        rows = rows[1:]
    table = {}
    for n, r in enumerate(rows, 1):
        if len(r) < 2:
            raise AmiError(f"{path}: row {n} has no label (want `file,label`)")
        table[r[0].strip()] = r[1].strip()
    missing = [str(p.relative_to(folder)) for p in files if str(p.relative_to(folder)) not in table]
    if missing:
        raise AmiError(f"{path}: no label for {len(missing)} images, e.g. {missing[0]}")
    return np.array([table[str(p.relative_to(folder))] for p in files])


def _import_av():
    try:
        import av
    except ImportError:
        raise AmiError("reading videos needs PyAV: pip install 'ami[video]' (or pip install av)"
                       ) from None
    return av
