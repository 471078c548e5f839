"""Command line: ``python -m nst_tf transfer|reconstruct|texture ...``.

Every run writes into its own folder (``data/output/<task>/<time>-<names>/``
unless ``--output`` is given): the image, a JSON sidecar with the full config,
seed, weights source, versions and timings, and optionally an animation.
Errors in the inputs print one line (no traceback) and exit with status 2;
Ctrl-C saves the best image so far and exits with status 130.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import sys
import warnings
from pathlib import Path

DEFAULT_CONTENT = "chelsea"
DEFAULT_STYLE = "hubble_deep_field"

EPILOG = """\
images: a bundled name (see `python -m nst_tf list`), a file path, or a painting
name found in NST_EXTRA_IMAGES folders or downloaded on demand.
layers: Keras VGG19 conv names, e.g. block1_conv1,block2_conv1 or with weights
block4_conv2:1.0. Every output has a JSON sidecar; `--config SIDECAR.json`
reruns it exactly.
"""


def _layers(text: str) -> dict[str, float]:
    """'block1_conv1,block2_conv1:0.5' -> {'block1_conv1': 1.0, 'block2_conv1': 0.5}."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight in {item!r}: use name:number") from None
    return out


def _pyramid(text: str) -> tuple:
    """'0.25:100,0.5:100' -> ((0.25, 100), (0.5, 100)); 'none' -> ()."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    try:
        return tuple((float(s), int(n)) for s, n in (p.split(":") for p in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad pyramid {text!r}: use scale:steps,... e.g. 0.5:20") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line (no usage block), like every other input error."""

    def error(self, message):
        self.exit(2, f"error: {message} — see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m nst_tf",
        description="Neural style transfer (Gatys et al.) with TensorFlow/Keras and VGG19.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    transfer = sub.add_parser(
        "transfer",
        help="paint a content image in the style of a style image",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    transfer.add_argument(
        "--content", default=DEFAULT_CONTENT, help=f"content image (default: {DEFAULT_CONTENT})"
    )
    transfer.add_argument(
        "--style", action="append", help=f"style image; repeat to blend several (default: {DEFAULT_STYLE})"
    )
    transfer.add_argument(
        "--style-blend",
        type=float,
        nargs="+",
        metavar="W",
        help="one weight per --style, e.g. 0.7 0.3 (default: equal)",
    )
    transfer.add_argument(
        "--style-scale",
        type=float,
        help="style image size relative to the generated image (default 1.0; <1 = finer brush strokes)",
    )
    transfer.add_argument(
        "--preserve-color",
        choices=("none", "luminance", "histogram"),
        help="keep the content's colours: luminance-only transfer or style recoloured to the content (default none)",
    )
    transfer.add_argument("--content-weight", type=float, help="weight of the content loss (default 1)")
    transfer.add_argument(
        "--style-weight",
        type=float,
        help="weight of the style loss (default 10; higher = more stylised; 0.1-1000 is the useful range)",
    )
    transfer.add_argument(
        "--content-layers", type=_layers, help="content layers, e.g. block4_conv2 (default)"
    )
    transfer.add_argument(
        "--style-layers", type=_layers, help="style layers (default block1_conv1..block5_conv1)"
    )
    transfer.add_argument(
        "--init", choices=("content", "style", "noise"), help="starting image (default content)"
    )
    texture = sub.add_parser(
        "texture",
        help="synthesise a texture with the Gram statistics of a style image",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    texture.add_argument(
        "--style",
        action="append",
        help=f"source texture or painting; repeat to blend (default: {DEFAULT_STYLE})",
    )
    texture.add_argument("--style-blend", type=float, nargs="+", metavar="W", help="one weight per --style")
    texture.add_argument(
        "--layers",
        dest="style_layers",
        type=_layers,
        help="style layers (default block1_conv1..block5_conv1)",
    )
    reconstruct = sub.add_parser(
        "reconstruct",
        help="reconstruct a content image from one layer's features",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconstruct.add_argument(
        "--content", default=DEFAULT_CONTENT, help=f"content image (default: {DEFAULT_CONTENT})"
    )
    reconstruct.add_argument(
        "--layer", dest="content_layers", type=_layers, help="layer(s) to match (default block4_conv2)"
    )
    for p in (transfer, texture, reconstruct):
        _common(p)
    sub.add_parser("list", help="list the image names that resolve here (bundled and NST_EXTRA_IMAGES)")
    figures = sub.add_parser(
        "figures", help="write a page (Markdown or Hugo shortcodes) of all saved figures, in notebook order"
    )
    figures.add_argument("--root", type=Path, help="figures folder (default data/output/figures)")
    figures.add_argument(
        "--base-url", default="", help="prefix for image links, with or without a trailing slash: /images/nst"
    )
    figures.add_argument(
        "--format",
        dest="fmt",
        choices=("markdown", "hugo"),
        default="markdown",
        help="plain Markdown images (default) or Hugo {{< figure >}} shortcodes",
    )
    figures.add_argument(
        "--include-quick", action="store_true", help="also list quick-mode (NST_QUICK=1) figures"
    )
    return parser


def _common(p: argparse.ArgumentParser):
    g = p.add_argument_group("optimisation")
    g.add_argument("--size", type=int, help="long side of the result in pixels (default 512)")
    g.add_argument(
        "--steps",
        type=int,
        help="L-BFGS steps at full size (transfer default 10, after the coarse stage; texture/reconstruct 100)",
    )
    g.add_argument(
        "--pyramid",
        type=_pyramid,
        help="coarse-to-fine stages before full size, scale:steps,... or 'none' (transfer default 0.5:20)",
    )
    g.add_argument(
        "--optimizer", choices=("lbfgs", "adam", "sgd"), help="lbfgs (default, fastest), adam or sgd"
    )
    g.add_argument(
        "--lr",
        dest="learning_rate",
        type=float,
        help="learning rate for adam/sgd in pixel units (default adam 4, sgd see docs)",
    )
    g.add_argument(
        "--lr-decay",
        type=float,
        help="learning-rate multiplier reached at the last step for adam/sgd (default 1 = constant)",
    )
    g.add_argument(
        "--tv-weight",
        type=float,
        help="total-variation weight: smooths high-frequency noise (default 1e-4 for transfer, 1e-5 reconstruct, 0 texture)",
    )
    g.add_argument("--pooling", choices=("max", "avg"), help="VGG pooling (default max)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--weights", help="VGG19 weights .h5 file (default: resolved automatically, see README)")
    o = p.add_argument_group("output")
    o.add_argument(
        "--config", type=Path, help="start from a JSON config or sidecar written by an earlier run"
    )
    o.add_argument(
        "--output",
        "-o",
        type=Path,
        help="output image path (.png/.jpg); default: a new run folder in data/output/",
    )
    o.add_argument("--overwrite", action="store_true", help="allow --output to replace an existing file")
    o.add_argument(
        "--frame-every",
        type=int,
        help="keep a frame every N steps for the animation (default 0, or 5 with --animation)",
    )
    o.add_argument("--animation", choices=("gif", "mp4"), help="also write the optimisation as an animation")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


_CONFIG_FLAGS = (
    "size",
    "steps",
    "pyramid",
    "optimizer",
    "learning_rate",
    "lr_decay",
    "tv_weight",
    "pooling",
    "seed",
    "weights",
    "content_weight",
    "style_weight",
    "content_layers",
    "style_layers",
    "init",
    "style_scale",
    "style_blend",
    "preserve_color",
    "frame_every",
)


def _config_from_args(args):
    from nst_tf.config import Config
    from nst_tf.errors import ConfigError

    if args.config:
        try:
            data = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"cannot read config {args.config}: {err} — pass a JSON file written by nst_tf"
            ) from None
        config = Config.from_dict(data.get("config", data) if isinstance(data, dict) else data)
    else:
        from nst_tf.transfer import TASK_DEFAULTS, _config

        config = _config(None, args.command, TASK_DEFAULTS[args.command], {})
    changes = {k: getattr(args, k) for k in _CONFIG_FLAGS if getattr(args, k, None) is not None}
    if args.animation and not changes.get("frame_every") and not config.frame_every:
        changes["frame_every"] = 5
    return config.replace(task=args.command, **changes).validate()


def _slug(text) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", Path(str(text)).stem).strip("-")[:40] or "image"


def _output_path(args, names) -> Path:
    from nst_tf.data import OUTPUT_DIR
    from nst_tf.errors import ConfigError

    if args.output:
        out = Path(args.output)
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise ConfigError(f"output {out} must end in .png or .jpg")
        if out.exists() and not args.overwrite:
            raise ConfigError(
                f"{out} already exists: pass --overwrite to replace it, or choose another --output"
            )
        _check_writable(out.parent, "choose another --output")
        return out
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    _check_writable(Path(OUTPUT_DIR) / args.command, "set NST_OUTPUT_DIR or pass --output")
    return Path(OUTPUT_DIR) / args.command / f"{stamp}-{'-'.join(_slug(n) for n in names)}" / "result.png"


def _check_writable(folder: Path, fix: str):
    """Fail before the run, not after it, when the results could not be written."""
    from nst_tf.errors import ConfigError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        ok = os.access(folder, os.W_OK)
    except FileExistsError:
        raise ConfigError(
            f"cannot write results to {folder}: a file is in the way of that folder — {fix}"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot write results to {folder}: {err.strerror or err} — {fix}") from None
    if not ok:
        raise ConfigError(f"cannot write results to {folder}: permission denied — {fix}")


def _reserve(out: Path, explicit: bool, overwrite: bool) -> Path:
    """The path to save to, never an earlier run's: a run folder is created exclusively (mkdir)."""
    if explicit:
        wanted, i = out, 1
        while out.exists() and not overwrite:  # appeared while this run was optimising
            i += 1
            out = wanted.with_name(f"{wanted.stem}-{i}{wanted.suffix}")
        return out
    base, i = out.parent, 1
    while True:
        folder = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            folder.mkdir(parents=True)
            return folder / out.name
        except FileExistsError:
            i += 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nst_tf.errors import NSTError

    try:
        return _run(args)
    except NSTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before the optimisation started: nothing to save", file=sys.stderr)
        return 130


def _run(args) -> int:
    if args.command == "list":
        from nst_tf.data import list_images

        for name, path in sorted(list_images().items()):
            print(f"{name:28s} {path}")
        return 0
    if args.command == "figures":
        from nst_tf.figures import export_markdown

        out = export_markdown(
            args.root, base_url=args.base_url, fmt=args.fmt, include_quick=args.include_quick
        )
        print(f"wrote {out}")
        return 0
    from nst_tf import transfer as api

    config = _config_from_args(args)
    content = getattr(args, "content", None)
    styles = getattr(args, "style", None) or ([DEFAULT_STYLE] if args.command != "reconstruct" else [])
    names = ([content] if content else []) + list(styles)
    out = _output_path(args, names)
    with warnings.catch_warnings():  # the API's "run stopped early" warning: printed below instead
        warnings.filterwarnings("ignore", message="run stopped early")
        result = api.run(
            config, content if args.command != "texture" else None, styles, progress=not args.quiet
        )
    try:  # a second Ctrl-C must not cut the save short
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous = None
    try:
        out = _reserve(out, explicit=bool(args.output), overwrite=args.overwrite)
        anim = out.with_name(f"{out.stem}_optimisation.{args.animation}") if args.animation else None
        path = result.save(out, animation=anim)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    t = result.timings
    print(
        f"saved {path} (+ {path.with_suffix('.json').name}"
        f"{', ' + anim.name if anim and result.frames else ''}) in {t['total_s']:.1f} s"
    )
    if result.stopped == "interrupted":
        print("interrupted: saved the best image so far", file=sys.stderr)
        return 130
    if result.stopped != "completed":
        knob = "--style-weight" if config.optimizer == "lbfgs" else "--lr (or --style-weight)"
        print(
            f"stopped early: the loss became NaN or infinite; saved the last finite image — lower {knob}",
            file=sys.stderr,
        )
        return 1
    return 0
