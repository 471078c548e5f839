"""Save the frames of an optimisation as an animated GIF or MP4 (imageio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nst_tf.errors import ConfigError
from nst_tf.files import atomic_write, user_path


def save_animation(frames, path, *, fps: float = 10.0, loop: int = 0, hold_last: float = 1.0) -> Path:
    """Write uint8 HxWx3 ``frames`` to ``path`` (.gif or .mp4), atomically; returns the path.

    The last frame is held for ``hold_last`` seconds so viewers see the result.
    MP4 needs the ``imageio-ffmpeg`` package (in requirements.txt).
    """
    return atomic_write(path, animation_writer(frames, path, fps=fps, loop=loop, hold_last=hold_last))


def animation_writer(frames, path, *, fps: float = 10.0, loop: int = 0, hold_last: float = 1.0):
    """Check the frames and the extension now; return a writer for :func:`nst_tf.files.write_files`."""
    path = user_path(path)
    frames = [np.asarray(f, np.uint8) for f in frames]
    if not frames:
        raise ConfigError(f"no frames to write to {path}: run with frame_every > 0 (CLI: --frame-every 10)")
    frames += [frames[-1]] * max(0, int(round(hold_last * fps)) - 1)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ConfigError(f"unsupported animation type {suffix!r} for {path}: use .gif or .mp4")

    def write(fh):
        if suffix == ".gif":
            import imageio.v3 as iio

            iio.imwrite(fh, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=loop)
        else:  # ffmpeg writes by name: the temporary file's, which ends in .mp4
            import imageio.v2 as iio2

            even = [_even(f) for f in frames]
            iio2.mimwrite(fh.name, even, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1)

    return write


def _even(frame):
    """H.264 needs even width and height: crop one pixel where needed."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]
