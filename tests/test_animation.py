"""nst_tf.animation: GIF and MP4 written through the atomic writer (from the round-two review,
issue #13). ffmpeg writes the MP4 by name, so it gets the temporary file's name, and the result is
renamed into place only when complete; an unsupported extension is refused before anything is written.
"""

from __future__ import annotations

import numpy as np
import pytest

from nst_tf.errors import ConfigError


def test_writers_that_need_a_name_get_the_temporary_one(tmp_path):
    """ffmpeg writes the MP4 by name: it writes the temporary file, renamed only when complete."""
    from nst_tf.animation import save_animation

    frames = [np.full((33, 35, 3), 40 * i, np.uint8) for i in range(4)]
    path = save_animation(frames, tmp_path / "a.mp4")
    assert path.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    with pytest.raises(ConfigError, match="unsupported animation"):
        save_animation(frames, tmp_path / "a.avi")
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
