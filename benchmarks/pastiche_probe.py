"""Run pastiche (PyTorch, L-BFGS) on given preprocessed images; print its loss-vs-time curve as JSON.

Runs under the *pastiche* interpreter (``PASTICHE_PYTHON``, a venv with
``torch`` and ``pastiche==1.6.0``), so it imports neither TensorFlow nor
nst_tf nor NumPy. ``benchmarks.run`` writes the content and style images,
already VGG-preprocessed (BGR, ImageNet mean removed, NCHW float32, exactly
what ``pastiche.load_image`` returns), as raw ``.f32`` files with a JSON
header, so both libraries optimise the very same pixels. Everything else is
pastiche's documented default (``pastiche --help``): L-BFGS with
``max_iter=1`` per step, content layer block4_relu2 (weight 0.01), style
layers block1..5_relu1 (weights 10 / C**2), Gram matrices divided by h*w,
mean squared errors, no total variation, max pooling.

    python pastiche_probe.py SPEC.json  ->  {"init_s", "initial_loss", "rows": [[t, loss], ...]}

``t`` is seconds since the first step started; the loss of step k is the one
pastiche's closure computed at step k (before that step's update), as
``artist.loss`` reports it.
"""

import json
import sys
import time


def _load(path, shape):
    import torch

    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).reshape(shape).clone()


def main(spec_path):
    import pastiche.pastiche as pp
    import torch

    with open(spec_path) as f:
        spec = json.load(f)
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    images = {spec["content"]: spec["content_shape"], spec["style"]: spec["style_shape"]}
    pp.load_image = lambda path, pixels=None, size=None: _load(path, images[path])
    torch.manual_seed(0)
    t = time.perf_counter()
    artist = pp.PasticheArtist(spec["content"], [spec["style"]], device="cpu")
    init_s = time.perf_counter() - t
    initial = artist.loss
    rows = []
    stop_below = spec.get("stop_below")
    t0 = time.perf_counter()
    for _ in range(int(spec["steps"])):
        artist.draw()
        rows.append([time.perf_counter() - t0, float(artist.loss)])
        if stop_below is not None and artist.loss <= stop_below:
            break
    print(
        json.dumps(
            {
                "init_s": init_s,
                "initial_loss": initial,
                "rows": rows,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "pastiche": pp.__version__,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
