"""Save the frames of an optimisation as an animated GIF or MP4 (imageio)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nst_tf.errors import ConfigError


def save_animation(frames, path, *, fps: float = 10.0, loop: int = 0, hold_last: float = 1.0) -> Path:
    """Write uint8 HxWx3 ``frames`` to ``path`` (.gif or .mp4), atomically; returns the path.

    The last frame is held for ``hold_last`` seconds so viewers see the result.
    MP4 needs the ``imageio-ffmpeg`` package (in requirements.txt).
    """
    import imageio.v3 as iio

    path = Path(path)
    frames = [np.asarray(f, np.uint8) for f in frames]
    if not frames:
        raise ConfigError(f"no frames to write to {path}: run with frame_every > 0 (CLI: --frame-every 10)")
    frames += [frames[-1]] * max(0, int(round(hold_last * fps)) - 1)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{suffix}")
    try:
        if suffix == ".gif":
            iio.imwrite(tmp, np.stack(frames), duration=1000.0 / fps, loop=loop)
        elif suffix == ".mp4":
            import imageio.v2 as iio2

            frames = [_even(f) for f in frames]
            iio2.mimwrite(tmp, frames, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1)
        else:
            raise ConfigError(f"unsupported animation type {suffix!r} for {path}: use .gif or .mp4")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _even(frame):
    """H.264 needs even width and height: crop one pixel where needed."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]
