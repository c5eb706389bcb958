"""Turning videos into pictures people can look at: strips, grids, GIFs, PNGs.

Files are encoded in memory and written through tf.io.gfile (any TF
filesystem).
"""

import io

import numpy as np
from PIL import Image

from hvrnn_tf.utils import atomic_write


def to_uint8(frames) -> np.ndarray:
  """Float frames in [0, 1] (any shape) -> uint8, clipped."""
  return (np.clip(np.asarray(frames, np.float32), 0.0, 1.0) * 255 + 0.5).astype(
    np.uint8
  )


def video_grid(videos, pad: int = 2) -> np.ndarray:
  """Tiles videos side by side, with `pad` white pixels between them.

  Args:
    videos: [N, T, H, W, C] (or list of [T, H, W, C]) floats in [0, 1].
  Returns:
    [T, H, N * (W + pad) - pad, C] floats.
  """
  videos = np.asarray(videos, np.float32)
  n, t, h, w, c = videos.shape
  grid = np.ones([t, h, n * (w + pad) - pad, c], np.float32)
  for i in range(n):
    grid[:, :, i * (w + pad) : i * (w + pad) + w] = videos[i]
  return grid


def image_strip(videos, pad: int = 2) -> np.ndarray:
  """One row per video, one column per frame.

  Args:
    videos: [R, T, H, W, C] floats in [0, 1].
  Returns:
    [R * (H + pad) - pad, T * (W + pad) - pad, C] floats.
  """
  videos = np.asarray(videos, np.float32)
  rows = [
    video_grid(v[:, None], pad)[0] for v in videos
  ]  # [H, T*(W+pad)-pad, C]
  r, (h, w, c) = len(rows), rows[0].shape
  strip = np.ones([r * (h + pad) - pad, w, c], np.float32)
  for i, row in enumerate(rows):
    strip[i * (h + pad) : i * (h + pad) + h] = row
  return strip


def _pil(image: np.ndarray) -> Image.Image:
  image = to_uint8(image)
  return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def write_png(path: str, image) -> None:
  """Writes an [H, W, C] float image in [0, 1] as PNG."""
  buffer = io.BytesIO()
  _pil(np.asarray(image)).save(buffer, format="PNG")
  atomic_write.write_bytes(path, buffer.getvalue())


def write_gif(path: str, frames, fps: float = 4.0) -> None:
  """Writes a looping GIF of frames [T, H, W, C] floats in [0, 1]."""
  atomic_write.write_bytes(path, encode_gif(frames, fps))


def encode_gif(frames, fps: float = 4.0) -> bytes:
  """A looping GIF of frames [T, H, W, C] floats in [0, 1]."""
  images = [_pil(f) for f in np.asarray(frames)]
  buffer = io.BytesIO()
  images[0].save(
    buffer,
    format="GIF",
    save_all=True,
    append_images=images[1:],
    duration=int(1000 / fps),
    loop=0,
  )
  return buffer.getvalue()


def to_rgb(frames) -> np.ndarray:
  """Float RGB copy of frames [..., C] with C = 1 (grey) or 3."""
  frames = np.asarray(frames, np.float32)
  return (
    np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames.copy()
  )


def mark_frames(frames, color=(1.0, 0.0, 0.0), width: int = 1) -> np.ndarray:
  """RGB copy of frames [T, H, W, C] with a coloured border of `width` >= 1."""
  if width < 1:
    raise ValueError(f"border width must be >= 1, got {width}")
  frames = to_rgb(frames)
  for region in (
    np.s_[:, :width],
    np.s_[:, -width:],
    np.s_[:, :, :width],
    np.s_[:, :, -width:],
  ):
    frames[region] = color
  return frames


def write_comparison(
  path_stem: str, truth, futures, context_frames: int, fps: float = 4.0
) -> list[str]:
  """Writes `<path_stem>.gif` and `.png`: ground truth, then each predicted future.

  Each row starts with the context; ground-truth future frames get a green
  border, predicted frames a red one.

  Args:
    truth: [c + F, H, W, C] floats in [0, 1].
    futures: [K, F, H, W, C] predicted futures of the same context.
  Returns:
    The two paths written.
  """
  truth = np.asarray(truth, np.float32)
  context = to_rgb(truth[:context_frames])
  rows = [
    np.concatenate(
      [context, mark_frames(truth[context_frames:], (0.0, 1.0, 0.0))]
    )
  ]
  rows += [np.concatenate([context, mark_frames(f)]) for f in futures]
  write_gif(path_stem + ".gif", video_grid(rows), fps)
  write_png(path_stem + ".png", image_strip(rows))
  return [path_stem + ".gif", path_stem + ".png"]
