"""Figures for the notebooks: image grids, feature maps, loss curves, a live view.

These keep plotting noise out of the lessons. Every function returns the
matplotlib Figure so it can be passed to ``nst_tf.figures.save_figure``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

#: Figure defaults used by every notebook (publication-ready: readable fonts, no frames).
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "lanczos",
}


def use_style():
    """Apply the project's figure defaults (call once in a notebook's Setup)."""
    plt.rcParams.update(STYLE)


def _as_uint8(img):
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img


def show_images(images, titles=None, *, ncols=None, size=3.0, suptitle=None, row_labels=None):
    """Show images (uint8 or float 0-255, HxWx3 or HxW) in a grid with optional titles."""
    images = list(images)
    n = len(images)
    ncols = ncols or n
    nrows = math.ceil(n / ncols)
    h, w = np.asarray(images[0]).shape[:2]
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows * h / w + 0.3 * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i < n:
            img = _as_uint8(images[i])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            if titles is not None:
                ax.set_title(titles[i])
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(label)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_feature_maps(features, n: int = 8, *, title=None, size=1.6):
    """The first ``n`` channels of one layer's (1, h, w, C) features, each scaled to its own range."""
    feats = np.asarray(features)[0]
    n = min(n, feats.shape[-1])
    maps = []
    for c in range(n):
        m = feats[..., c]
        span = m.max() - m.min()
        maps.append(255 * (m - m.min()) / span if span > 0 else np.zeros_like(m))
    fig = show_images(maps, [f"channel {c}" for c in range(n)], ncols=min(n, 8), size=size, suptitle=title)
    return fig


def plot_history(histories, *, x: str = "time", terms: bool = False, logy: bool = True, ax=None, title=None):
    """Loss curves. ``histories``: one History or {label: History}; ``x`` is "time" (s) or "step"."""
    from nst_tf.optimize import History

    if isinstance(histories, History) or hasattr(histories, "loss"):
        histories = {"loss": histories}
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    for label, h in histories.items():
        xs = h.time if x == "time" else h.step
        if terms and h.terms:
            for name, values in h.terms.items():
                ax.plot(xs, values, label=f"{label}: {name}" if len(histories) > 1 else name)
        else:
            ax.plot(xs, h.loss, label=label)
    ax.set_xlabel("wall time (s)" if x == "time" else "step")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


class LiveView:
    """Refresh one image + loss plot in place every ``every`` steps (d2l's Animator, in small).

    Pass an instance as ``callback=`` to ``nst_tf.optimize.optimize`` or the
    high-level API. Outside Jupyter it does nothing.
    """

    def __init__(self, every: int = 10, size: float = 3.0):
        self.every, self.size = every, size
        self.steps, self.losses = [], []
        self.handle = None
        try:
            from IPython import get_ipython

            self.active = get_ipython() is not None and "IPKernelApp" in get_ipython().config
        except ImportError:
            self.active = False

    def __call__(self, step, loss, x):
        self.steps.append(step)
        self.losses.append(loss)
        if not self.active or step % self.every:
            return
        from IPython.display import display

        from nst_tf.images import deprocess_image

        fig, (a, b) = plt.subplots(1, 2, figsize=(2.2 * self.size, self.size))
        a.imshow(deprocess_image(x[0]))
        a.set_axis_off()
        a.set_title(f"step {step}")
        b.plot(self.steps, self.losses)
        b.set_yscale("log")
        b.set_xlabel("step")
        b.set_ylabel("loss")
        fig.tight_layout()
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)
