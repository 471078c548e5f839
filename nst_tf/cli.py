"""Command line: ``python -m nst_tf transfer|reconstruct|texture ...``.

Every run writes into its own folder (``data/output/<task>/<time>-<names>/``
unless ``--output`` is given): the image, a JSON sidecar with the full config,
seed, weights source, versions and timings, and optionally an animation.
Errors in the inputs print one line (no traceback) and exit with status 2;
Ctrl-C saves the best image so far and exits with status 130, SIGTERM and
SIGHUP do the same with 143 and 129. Names in messages are printed escaped
(a newline or terminal escape in a file name stays on its line).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import sys
import warnings
from pathlib import Path

from nst_tf.config import Config
from nst_tf.files import STOP_SIGNALS, restore_signal_handlers, set_signal_handlers
from nst_tf.precision import PRECISIONS

DEFAULT_CONTENT = "chelsea"
DEFAULT_STYLE = "hubble_deep_field"

EPILOG = """\
images: a bundled name (see `python -m nst_tf list`), a file path, or a painting
name found in NST_EXTRA_IMAGES folders or downloaded on demand.
layers: Keras VGG19 conv names, e.g. block1_conv1,block2_conv1 or with weights
block4_conv2:1.0. Every output has a JSON sidecar; `--config SIDECAR.json`
reruns it exactly: its settings, images and masks (each file checked against the
hash recorded). Flags given override; a new --content or --style drops the masks
recorded for the old ones.
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


def _path(text: str) -> Path:
    """Every path option expands ``~`` the same way (as nst_tf.files.user_path does)."""
    return Path(os.path.expanduser(text))


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
        "--content", nargs="+", metavar="IMAGE",
        help="content image; several files or a folder give one result + sidecar each in one run "
        "folder (VGG19 and the style targets built once; a file that cannot be used is reported and "
        f"skipped) (default: {DEFAULT_CONTENT}, or the one a --config sidecar recorded)",
    )  # fmt: skip
    transfer.add_argument(
        "--style", action="append", help=f"style image; repeat to blend several (default: {DEFAULT_STYLE})"
    )
    regions = transfer.add_argument_group(
        "spatial control and scales (Gatys et al. 2017; notebook 04)",
        "Masks are images, white = the region, resized to the content image. "
        "Pixels in no --style-mask keep the photo.",
    )
    regions.add_argument(
        "--style-mask", action="append", type=_path, metavar="MASK",
        help="where the --style of the same position goes: one mask per --style, in order",
    )  # fmt: skip
    regions.add_argument(
        "--content-mask", type=_path, metavar="MASK",
        help="the region that keeps the photo: no style there, and a 10x stronger content loss",
    )  # fmt: skip
    regions.add_argument(
        "--style-coarse", metavar="IMAGE", help="style of the coarse structure (needs --style-fine)"
    )
    regions.add_argument(
        "--style-fine", metavar="IMAGE", help="style of the fine texture, blocks 1-2 (needs --style-coarse)"
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
    reconstruct = sub.add_parser(
        "reconstruct",
        help="reconstruct a content image from one layer's features",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconstruct.add_argument(
        "--content",
        help=f"content image (default: {DEFAULT_CONTENT}, or the one a --config sidecar recorded)",
    )
    for command, p in (("transfer", transfer), ("texture", texture), ("reconstruct", reconstruct)):
        _config_flags(p, command)
        _output_flags(p)
    _fast_parsers(sub)
    sub.add_parser(
        "list",
        help="list the image names that resolve here (bundled and NST_EXTRA_IMAGES) and the shipped networks",
    )
    figures = sub.add_parser(
        "figures", help="write a page (Markdown or Hugo shortcodes) of all saved figures, in notebook order"
    )
    figures.add_argument("--root", type=_path, help="figures folder (default data/output/figures)")
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
        "--include-quick", action="store_true", help="also list quick-mode (NST_QUICK=1) figures, marked"
    )
    figures.add_argument(
        "--output",
        "-o",
        type=_path,
        help="page to write (default: <root>/FIGURES.md); links are relative to it unless --base-url",
    )
    figures.add_argument(
        "--overwrite", action="store_true", help="allow --output to replace an existing file"
    )
    return parser


#: How a Config field's text on the command line becomes its value, by the field's type annotation.
_ARG_TYPES = {
    "int": {"type": int},
    "float": {"type": float},
    "float | None": {"type": float},
    "str": {},  # fields with choices
    "str | None": {"type": lambda text: str(_path(text))},  # weights: a file, or "random"
    "dict[str, float]": {"type": _layers},
    "tuple[tuple[float, int], ...]": {"type": _pyramid},
    "tuple[float, ...] | None": {"type": float, "nargs": "+", "metavar": "W"},
    "tuple[str, ...] | None": {"type": lambda text: str(_path(text)), "nargs": "+", "metavar": "SOURCE"},
}


def _config_flags(p: argparse.ArgumentParser, command: str, defaults=None, title=None):
    """One flag per Config field that ``command`` offers: help, choices and defaults come from Config
    (or from ``defaults``, another dataclass of ``_setting`` fields: ``train``'s TrainConfig)."""
    defaults = Config.for_task(command) if defaults is None else defaults
    g = p.add_argument_group(title or "settings (nst_tf.Config fields; `--config` starts from a saved one)")
    for f in dataclasses.fields(defaults):
        meta = f.metadata
        if command not in meta["cli"]:
            continue
        flag = meta["flag"].get(command) if isinstance(meta["flag"], dict) else meta["flag"]
        value = getattr(defaults, f.name)
        shown = "" if value is None else f" (default {_show_default(value)})"
        g.add_argument(
            flag or "--" + f.name.replace("_", "-"),
            dest=f.name,
            choices=meta["choices"],
            help=meta["help"] + shown,
            **_ARG_TYPES[f.type],
        )


def _show_default(value) -> str:
    """A default as the user would type it on the command line."""
    if isinstance(value, dict):  # layers
        return ",".join(k if w == 1 else f"{k}:{w:g}" for k, w in value.items()) or "none"
    if isinstance(value, tuple):  # pyramid
        return ",".join(f"{s:g}:{n}" for s, n in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _output_flags(p: argparse.ArgumentParser):
    o = p.add_argument_group("output")
    o.add_argument(
        "--config",
        type=_path,
        help="start from a JSON config, or rerun a sidecar written by an earlier run (its settings, "
        "images and masks; flags given override them)",
    )
    o.add_argument(
        "--output",
        "-o",
        type=_path,
        help="output image path (.png/.jpg); default: a new run folder in data/output/",
    )
    o.add_argument("--overwrite", action="store_true", help="allow --output to replace an existing file")
    o.add_argument("--animation", choices=("gif", "mp4"), help="also write the optimisation as an animation")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _read_config(args):
    """The parsed JSON of ``--config`` (a config or a sidecar); one-line ConfigError if unreadable."""
    from nst_tf.errors import ConfigError
    from nst_tf.files import open_input, printable, user_path

    fix = "pass a JSON file written by nst_tf"
    with open_input(user_path(args.config), what="config", error=ConfigError, fix=fix) as fh:
        try:
            raw = fh.read(_MAX_CONFIG_BYTES + 1)
            if len(raw) > _MAX_CONFIG_BYTES:
                raise ValueError(f"it is larger than {_MAX_CONFIG_BYTES >> 20} MiB, not a config")
            return json.loads(raw.decode("utf-8"))
        except (OSError, ValueError) as err:
            reason = printable(str(err).splitlines()[0] if str(err) else type(err).__name__)
            raise ConfigError(f"cannot read config {printable(args.config)}: {reason} — {fix}") from None
        except RecursionError:  # e.g. [[[[...]]]] thousands deep: json recurses once per level
            raise ConfigError(
                f"config {printable(args.config)} is nested too deeply to be a config — {fix}"
            ) from None


def _config_from_args(args, data=None):
    """The run's Config: the task's defaults or ``--config`` (``data``: its JSON, if already read),
    then every flag given."""
    if args.config:
        if data is None:
            data = _read_config(args)
        config = Config.from_dict(data.get("config", data) if isinstance(data, dict) else data).as_task(
            args.command
        )
    else:
        config = Config.for_task(args.command)
    names = [f.name for f in dataclasses.fields(Config)]
    changes = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    if args.animation and not changes.get("frame_every") and not config.frame_every:
        changes["frame_every"] = 5
    return config.replace(**changes).validate()


#: A sidecar is a few KiB; anything much larger is not a config (and is not read whole).
_MAX_CONFIG_BYTES = 1 << 20


def _slug(text) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", Path(str(text)).stem).strip("-")[:40] or "image"


def _output_path(args, names, config) -> Path:
    """Where the image goes, checked before the run: every file the run writes, and the space.

    The path is normalised once (``~`` expanded, made absolute) and the same path is checked
    now and written later. Nothing is created here: the run folder is made only after the
    inputs loaded and the optimisation ran (:func:`_reserve`).
    """
    from nst_tf.errors import ConfigError
    from nst_tf.files import check_writable, output_dir, printable, user_path

    need = _bytes_needed(args, config)
    if args.output:
        out = Path(os.path.abspath(user_path(args.output)))
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise ConfigError(f"output {printable(out)} must end in .png or .jpg")
        _check_free(out, args)
        check_writable(out.parent, need_bytes=need, fix="choose another --output")
        return out
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = output_dir().absolute() / args.command
    check_writable(folder, need_bytes=need, fix="set NST_OUTPUT_DIR or pass --output")
    return folder / f"{stamp}-{'-'.join(_slug(n) for n in names)}" / "result.png"


def _check_free(out: Path, args) -> None:
    """Refuse, before any work, to replace a file the run with image path ``out`` would write, or to
    start a run whose output names are too long for the file system."""
    from nst_tf.errors import ConfigError
    from nst_tf.files import check_names, printable

    check_names(_outputs(out, args.animation))
    for path in _outputs(out, args.animation):
        if os.path.isdir(path):
            raise ConfigError(f"cannot write {printable(path)}: it is a directory — choose another --output")
        if os.path.lexists(path) and not args.overwrite:
            raise ConfigError(
                f"{printable(path)} already exists (this run would write {_names(out, args.animation)}): "
                "pass --overwrite to replace them, or choose another --output"
            )


def _outputs(out: Path, animation: str | None) -> list[Path]:
    """Every file a run with image path ``out`` writes: image, sidecar, animation."""
    paths = [out, out.with_suffix(".json")]
    if animation:
        paths.append(out.with_name(f"{out.stem}_optimisation.{animation}"))
    return paths


def _names(out: Path, animation: str | None) -> str:
    from nst_tf.files import printable

    return ", ".join(printable(p.name) for p in _outputs(out, animation))


def _bytes_needed(args, config) -> int:
    """Upper bound of what a run writes: the image (raw RGB), the sidecar, the frames (1 B/px)."""
    pixels = config.size * config.size
    need = 3 * pixels + (1 << 20)
    if args.animation and config.frame_every:
        steps = sum(n for _, n in config.stages())
        need += (steps // config.frame_every + 12) * pixels
    return need


def _reserve(out: Path, explicit: bool, overwrite: bool, animation: str | None = None) -> Path:
    """The path to save to, never an earlier run's: a run folder is created exclusively (mkdir)."""
    if explicit:
        wanted, i = out, 1
        while not overwrite and any(os.path.lexists(p) for p in _outputs(out, animation)):
            i += 1  # one of the files appeared while this run was optimising
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


#: The signals received during this run (SIGINT and ``STOP_SIGNALS`` stop it like Ctrl-C: the best
#: image so far is saved, exit 128 + number).
_received: list[int] = []


def _on_stop_signal(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt  # the optimiser stops at the next step and returns the best image


def _hold_signal(signum, frame):
    """While a result is saved: note Ctrl-C or a stop signal and let the save finish (a folder run
    then stops; see ``_save``)."""
    _received.append(signum)


def _set_handlers(handler) -> dict:
    """Set ``handler`` for STOP_SIGNALS, and for SIGINT too unless it raises KeyboardInterrupt
    (Python's own SIGINT handler does); return the previous handlers."""
    names = STOP_SIGNALS + (("SIGINT",) if handler is not _on_stop_signal else ())
    return set_signal_handlers(handler, names)


_restore = restore_signal_handlers


def _stop_status() -> tuple[str, int]:
    """('terminated (SIGTERM)', 143) for the last stop signal received, ('interrupted', 130) for Ctrl-C."""
    if not _received or _received[-1] == signal.SIGINT:
        return "interrupted", 130
    sig = signal.Signals(_received[-1])
    return f"{'hung up' if sig.name == 'SIGHUP' else 'terminated'} ({sig.name})", 128 + sig.value


def _rescue(result, out: Path, anim: Path | None, err: Exception):
    """Save a finished run somewhere else when its folder cannot take it; always raises OutputError.

    Nothing was written at ``out`` (all or nothing), so the work would be lost on exit: it goes
    to a fresh folder in the temporary directory, and the one-line error says where.
    """
    import tempfile

    from nst_tf.errors import ImageError, OutputError

    try:
        folder = Path(tempfile.mkdtemp(prefix="nst_tf-rescue-"))
        try:
            path = result.save(folder / out.name, animation=folder / anim.name if anim else None)
        except ImageError:  # saved without the animation
            path = folder / out.name
    except Exception:
        raise OutputError(f"{err}; the result could not be saved elsewhere either") from None
    raise OutputError(f"{err}; the result was saved to {path} instead") from None


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on the command line: one escaped line, no source location."""
    from nst_tf.files import printable

    print(f"warning: {printable(message)}", file=file or sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nst_tf.errors import NSTError
    from nst_tf.files import os_reason, printable

    _received.clear()
    previous = _set_handlers(_on_stop_signal)
    show = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        return _run(args)
    except NSTError as err:
        print(f"error: {printable(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # any other OS error about a path: one line too, never a traceback
        where = f" '{printable(err.filename)}'" if getattr(err, "filename", None) else ""
        print(f"error: {os_reason(err)}{where} — check the path and its permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        word, status = _stop_status()
        print(f"{word} before the optimisation started: nothing to save", file=sys.stderr)
        return status
    finally:
        _restore(previous)
        warnings.showwarning = show


def _styles(args, config, record=None):
    """(config, style images, mask arguments of ``transfer.run``): --style (blended), --style-mask
    (one region per style), --content-mask, or --style-coarse/--style-fine (``style_mix="scale"``).

    ``record`` (:func:`_inputs_record`): the inputs a ``--config`` sidecar recorded, used where no
    flag says otherwise. The masks are drawn on the content photo, the style masks one per style:
    a recorded mask is used only while the images it was drawn for are the recorded ones too."""
    from nst_tf.errors import ConfigError

    record = record or {}
    styles = list(getattr(args, "style", None) or [])
    coarse, fine = getattr(args, "style_coarse", None), getattr(args, "style_fine", None)
    recorded_styles = False
    if coarse or fine:
        if not (coarse and fine):
            raise ConfigError("--style-coarse and --style-fine go together: give both, or use --style")
        if styles:
            raise ConfigError("--style-coarse/--style-fine replace --style: give one or the other")
        styles, config = [coarse, fine], config.replace(style_mix="scale").validate()
    elif not styles and args.command != "reconstruct":
        if record.get("styles"):
            styles = [
                _recorded_file(args, entry, f"style image {i + 1}", "--style")
                for i, entry in enumerate(record["styles"])
            ]
            recorded_styles = True
        else:
            styles = [DEFAULT_STYLE]
    recorded_content = getattr(args, "content", None) is None and "content" in record
    masks = {}
    if getattr(args, "style_mask", None):
        masks["style_masks"] = list(args.style_mask)
    elif hasattr(args, "style_mask") and record.get("style_masks") and recorded_styles and recorded_content:
        masks["style_masks"] = [
            _recorded_file(args, entry, f"style mask {i + 1}", "--style-mask")
            for i, entry in enumerate(record["style_masks"])
        ]
    if getattr(args, "content_mask", None):
        masks["content_mask"] = args.content_mask
    elif hasattr(args, "content_mask") and record.get("content_mask") and recorded_content:
        masks["content_mask"] = _recorded_file(args, record["content_mask"], "content mask", "--content-mask")
    return config, styles, masks


def _inputs_record(data) -> dict:
    """The "inputs" a result sidecar recorded (content, styles, masks), or {} for a plain config."""
    record = data.get("inputs") if isinstance(data, dict) and isinstance(data.get("config"), dict) else None
    return record if isinstance(record, dict) else {}


def _recorded_file(args, entry, what: str, flag: str) -> str:
    """The image a ``--config`` sidecar recorded as ``entry`` (``{"name", "path", "sha256"}``), as a
    name or path to pass to the run: the recorded path, or the name as given then (a bundled name, a
    relative path) if it is the same file. One-line ConfigError if it no longer exists, its content
    changed since (the sha256 differs), or the run was given an array or bytes, not a file."""
    from nst_tf.data import resolve_image
    from nst_tf.errors import ConfigError, ImageError
    from nst_tf.files import printable, sha256_file

    where = f"the {what} recorded in {printable(args.config)}"
    entry = entry if isinstance(entry, dict) else {}
    name, path, digest = (
        entry.get(k) if isinstance(entry.get(k), str) else "" for k in ("name", "path", "sha256")
    )
    if not (name or path):
        given = {"array": "an array", "bytes": "image bytes", "file": "a file object"}
        how = next((f"was {v} given in Python" for k, v in given.items() if k in entry), "names no file")
        raise ConfigError(f"{where} {how}, not a file to read again: pass {flag} to choose one")

    if path and os.path.isfile(path):
        found, use = Path(path), path
        try:  # the name as given then, when it is this same file (a bundled name stays portable)
            if name and os.path.samefile(resolve_image(name, allow_download=False), path):
                use = name
        except (ImageError, OSError):
            pass
    else:
        try:
            found = resolve_image(name or path)
        except ImageError:
            shown = printable(path or name)
            raise ConfigError(
                f"{where}, '{shown}', no longer exists: restore it, or pass {flag} to choose another"
            ) from None
        use = name or path
    try:
        now = sha256_file(found, what="image", error=ImageError, fix="pass an image file")
    except (ImageError, OSError) as err:
        raise ConfigError(
            f"{where} cannot be read again ({printable(err)}): pass {flag} to choose another"
        ) from None
    if digest and not now.startswith(digest.lower()):
        raise ConfigError(
            f"{where}, '{printable(found)}', has changed since that run (sha256 {printable(digest)}, now "
            f"{now[: len(digest)]}): restore it, or pass {flag} to use it as it is now"
        )
    return use


def _run(args) -> int:
    if args.command == "list":
        from nst_tf.data import SHIPPED_DIR, list_images, shipped_models
        from nst_tf.files import printable

        for name, path in sorted(list_images().items()):
            print(f"{printable(name):28s} {printable(path)}")
        shipped = shipped_models()
        if shipped:
            print("\nnetworks that ship trained (stylize --style NAME):")
            for name, path in shipped.items():
                print(f"{printable(name):28s} {printable(path)}")
        decoders = sorted((SHIPPED_DIR / "decoders").glob("*.keras"))
        if decoders:
            print("\ndecoders for any style (stylize --method adain|wct --style IMAGE):")
            for path in decoders:
                print(f"{printable(path.stem):28s} {printable(path)}")
        cyclegans = sorted((SHIPPED_DIR / "cyclegan").glob("*.keras"))
        if cyclegans:
            print("\nCycleGANs that ship trained (translate --style NAME):")
            for path in cyclegans:
                print(f"{printable(path.stem):28s} {printable(path)}")
        return 0
    if args.command == "figures":
        from nst_tf.figures import export_page
        from nst_tf.files import printable

        out, count = export_page(
            args.root,
            args.output,
            base_url=args.base_url,
            fmt=args.fmt,
            include_quick=args.include_quick,
            overwrite=args.overwrite or None,
        )
        print(f"wrote {count} figure(s) as {args.fmt} to {printable(out)}")
        return 0
    if args.command in ("train", "stylize"):
        return _run_fast(args)
    if args.command == "translate":
        return _translate(args)
    data = _read_config(args) if args.config else None
    config = _config_from_args(args, data)
    record = _inputs_record(data)
    content = getattr(args, "content", None)
    if content is None and args.command != "texture":  # the sidecar's content, else the default
        content = (
            _recorded_file(args, record["content"], "content image", "--content")
            if "content" in record
            else DEFAULT_CONTENT
        )
        content = [content] if args.command == "transfer" else content
    config, styles, masks = _styles(args, config, record)
    if isinstance(content, list):  # transfer: one image, or several files and folders
        contents = _contents(content, exclude=args.output)
        if contents is not None:
            return _run_folder(args, config, content, contents, styles, masks)
        content = content[0]
    names = ([content] if content else []) + list(styles)
    out = _output_path(args, names, config)
    result = _transfer(args, config, content if args.command != "texture" else None, styles, masks)
    path, anim = _save(result, out, args, explicit=bool(args.output))
    print(_saved(result, path, anim))
    return _status(result, config)


def _transfer(args, config, content, styles, masks, shared=None):
    """``transfer.run`` for the command line: its "run stopped early" warning is printed by ``_status``."""
    from nst_tf import transfer as api

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="run stopped early")
        return api.run(config, content, styles, progress=not args.quiet, shared=shared, **masks)


def _save(result, out: Path, args, *, explicit: bool) -> tuple[Path, Path | None]:
    """Save ``result`` at ``out`` (+ sidecar, + animation); return the image and animation paths.

    A second Ctrl-C or a stop signal cannot cut the save short: it is held (``_hold_signal``) until
    the files are written. The run folder is reserved only now (``_reserve``); if it cannot take
    the files (disk full, folder gone), the result is rescued to a temporary folder (``_rescue``).
    """
    from nst_tf.errors import OutputError

    previous = _set_handlers(_hold_signal)
    try:
        out = _reserve(out, explicit=explicit, overwrite=args.overwrite, animation=args.animation)
        anim = out.with_name(f"{out.stem}_optimisation.{args.animation}") if args.animation else None
        try:
            path = result.save(out, animation=anim, overwrite=args.overwrite)
        except OutputError as err:  # the disk filled or the folder went away during the run
            _rescue(result, out, anim, err)
    finally:
        _restore(previous)
    return path, anim


def _saved(result, path: Path, anim: Path | None) -> str:
    from nst_tf.files import printable

    also = f", {printable(anim.name)}" if anim and result.frames else ""
    sidecar = printable(path.with_suffix(".json").name)
    return f"saved {printable(path)} (+ {sidecar}{also}) in {result.timings['total_s']:.1f} s"


def _status(result, config, tag: str = "") -> int:
    """Exit status of a saved result, saying in one line why it stopped early: 128 + the signal's
    number after Ctrl-C (130) or a stop signal, 1 after a NaN or infinite loss, else 0."""
    if result.stopped == "interrupted":
        word, status = _stop_status()
        print(f"{tag}{word}: saved the best image so far", file=sys.stderr)
        return status
    if result.stopped != "completed":
        knob = "--style-weight" if config.optimizer == "lbfgs" else "--lr (or --style-weight)"
        print(
            f"{tag}stopped early: the loss became NaN or infinite; saved the last finite image — lower {knob}",
            file=sys.stderr,
        )
        return 1
    return 0


# ----------------------------------------------------------------------------- folders of contents
def _contents(items: list[str], exclude=None) -> list[tuple[str, Path]] | None:
    """``transfer --content`` with several files or a folder: (image, its output in the run folder)
    for each, named as ``stylize`` names them (``<stem>.png``, a folder's images under
    ``<folder>/``, ``-2`` added to a repeated name). None for one image: the single-image run."""
    from nst_tf.data import IMAGE_EXTENSIONS, images_below
    from nst_tf.errors import ConfigError
    from nst_tf.files import printable, unique_names, user_path

    def is_folder(item: str) -> bool:
        # "" is not the current folder, and a folder named like an image (x.png) is a mistaken file
        path = user_path(item)
        return bool(item.strip()) and path.is_dir() and path.suffix.lower() not in IMAGE_EXTENSIONS

    if len(items) == 1 and not is_folder(items[0]):
        return None
    sources, rels = [], []
    for item in items:
        path = user_path(item)
        if is_folder(item):
            found = images_below(path, exclude=user_path(exclude) if exclude else None)
            if not found:
                raise ConfigError(
                    f"no images (.jpg, .png, ...) in '{printable(path)}': pass a folder of images"
                )
            top = Path(os.path.basename(os.path.abspath(path)))
            named = [(str(f), top / f.relative_to(path)) for f in found]
        else:  # a file or an image name; read (and reported if bad) when its turn comes
            named = [(item, Path(Path(item).name))]
        sources += [src for src, _ in named]
        rels += [rel.with_suffix(".png") for _, rel in named]
    # photo.jpg and photo.png, or one name in two folders: one rule with `stylize` (files.unique_names)
    return list(zip(sources, unique_names(rels)))


def _run_folder(args, config, items, contents, styles, masks) -> int:
    """One result + sidecar per content image, in one run folder, with one line per image and a
    summary at the end. VGG19 and the style targets are built once (``transfer.Shared``). A content
    image that cannot be used is reported in one line and skipped; the exit status is then 1.
    Ctrl-C or a stop signal keeps what was saved, saves the current image's best so far and stops."""
    import time

    from nst_tf import transfer as api
    from nst_tf.errors import ConfigError, ImageError
    from nst_tf.files import FolderReport, printable

    folder = _run_folder_path(args, config, items + list(styles), contents)
    _check_styles(config, styles, masks)
    shared, report = api.Shared(), FolderReport(verb="painted", total=len(contents), where=folder)
    status, started, reserved = 0, time.perf_counter(), bool(args.output)
    try:
        for i, (src, rel) in enumerate(contents, 1):
            tag = f"[{i}/{len(contents)}] {printable(src)}: "
            try:
                result = _transfer(args, config, src, styles, masks, shared)
            except (ImageError, ConfigError) as err:  # this image: report it, go on with the others
                report.failed[src] = str(err)
                print(f"error: {tag}{printable(err)}", file=sys.stderr)
                continue
            if not reserved:  # the first result: create the run folder, exclusively (never another run's)
                folder = report.where = _reserve(folder / rel.name, False, False).parent
                reserved = True
            held = len(_received)
            path, anim = _save(result, folder / rel, args, explicit=True)
            report.written.append(path)
            print(tag + _saved(result, path, anim))
            status = max(status, _status(result, config, tag))
            if result.stopped == "interrupted" or len(_received) > held:  # Ctrl-C, or a signal while saving
                word, status = _stop_status()
                if result.stopped != "interrupted":
                    print(f"{word} while saving: stopped after {tag[:-2]}", file=sys.stderr)
                break
    except KeyboardInterrupt:  # before a stage finished (loading, targets): nothing to save of this one
        word, status = _stop_status()
        print(f"{word}: stopped before image {len(report.written) + len(report.failed) + 1} had a result",
              file=sys.stderr)  # fmt: skip
    finally:
        report.seconds = time.perf_counter() - started
        print(report.summary())
    return status or (1 if report.failed else 0)


def _run_folder_path(args, config, names, contents) -> Path:
    """The run folder of a folder run (``--output DIR`` or a new one), checked before any work: no
    file it would write is in the way (unless --overwrite), and there is space for all of them."""
    from nst_tf.errors import ConfigError
    from nst_tf.files import check_writable, output_dir, printable, user_path

    need = len(contents) * _bytes_needed(args, config)
    if not args.output:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = output_dir().absolute() / args.command
        check_writable(base, need_bytes=need, fix="set NST_OUTPUT_DIR or pass --output")
        return base / f"{stamp}-{'-'.join(_slug(n) for n in names[:3])}"
    folder = Path(os.path.abspath(user_path(args.output)))
    if folder.suffix.lower() in (".png", ".jpg", ".jpeg") or folder.is_file():
        raise ConfigError(
            f"--output {printable(folder)} must be a folder when --content names several images "
            "(one result + sidecar each goes into it)"
        )
    for _, rel in contents:
        _check_free(folder / rel, args)
    check_writable(folder, need_bytes=need, fix="choose another --output")
    return folder


def _check_styles(config, styles, masks) -> None:
    """The styles and masks are the same for every content image: load them once before any work,
    so that a bad one is one error (exit status 2), not one per image."""
    from nst_tf import transfer as api
    from nst_tf.masks import load_mask

    api.load_inputs(config.replace(content_weight=0.0), None, styles)  # blend and mix checks too
    for i, mask in enumerate(masks.get("style_masks") or ()):
        load_mask(mask, f"style mask {i + 1}")
    if masks.get("content_mask") is not None:
        load_mask(masks["content_mask"], "content mask")


# ----------------------------------------------------------------------------- fast style transfer
def _fast_parsers(sub):
    """``train`` (a feed-forward network for one style) and ``stylize`` (apply it): nst_tf.fast."""
    from nst_tf.fast_config import TrainConfig

    train = sub.add_parser(
        "train",
        help="train a fast style-transfer network for one style (Johnson et al.)",
        epilog="The model (.keras), its JSON sidecar and a checkpoint (.ckpt.npz) are written; "
        "Ctrl-C keeps the last checkpoint and --resume continues from it. Under TF_CONFIG the "
        "run is one worker of a MultiWorkerMirroredStrategy (see nst_tf/fast.py).",
    )
    train.add_argument(
        "--style", default=DEFAULT_STYLE, help=f"style image: name or path (default: {DEFAULT_STYLE})"
    )
    _config_flags(train, "train", TrainConfig(), "settings (nst_tf.fast_config.TrainConfig fields)")
    o = train.add_argument_group("output")
    o.add_argument(
        "--output", "-o", type=_path, help="model path (.keras); default: a new folder in data/output/train/"
    )
    o.add_argument("--resume", action="store_true", help="continue from the checkpoint of --output")
    o.add_argument(
        "--no-check",
        action="store_true",
        help="skip the closing check (the network beside the default transfer on the held-out photos)",
    )
    o.add_argument("--overwrite", action="store_true", help="allow --output to replace an existing model")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    stylize = sub.add_parser(
        "stylize",
        help="stylise images, folders or videos with a network made by `train`",
        epilog="Each image gives OUTPUT/<name>.png, each folder OUTPUT/<folder>/... (one output per "
        "image; unreadable files are reported and skipped), each video OUTPUT/<name>.mp4 at the "
        "source frame rate; every output has a JSON sidecar. Inputs that would share a name (a.png "
        "and a.jpg) get -2, -3...: a.png, a-2.png, as in `transfer --content`. An image too large "
        "for the memory available is refused before it is decoded (NST_MEMORY_LIMIT_GB sets the budget).",
    )
    stylize.add_argument("inputs", nargs="+", type=_path, metavar="INPUT", help="image, folder or video")
    which = stylize.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", "-m", type=_path, help="a .keras file written by `train`")
    which.add_argument(
        "--style",
        help="a network that ships trained, by style name (`python -m nst_tf list` shows them); "
        "with --method, any style image (a name or a path)",
    )
    stylize.add_argument(
        "--method",
        choices=("adain", "wct"),
        help="any style in one pass (notebook 06): AdaIN or WCT on VGG19's features, then the "
        "shipped decoder (or --decoder); --style then names any painting",
    )
    stylize.add_argument(
        "--decoder", type=_path, help="with --method: a decoder .keras file (default: the shipped one)"
    )
    stylize.add_argument(
        "--alpha", type=float, default=1.0,
        help="with --method: 0 keeps the photo's features, 1 the full style transform (default 1)",
    )  # fmt: skip
    stylize.add_argument(
        "--style-size", type=int, default=512,
        help="with --method: the style image's long side before its statistics are taken (default 512)",
    )  # fmt: skip
    stylize.add_argument(
        "--preserve-color",
        action="store_true",
        help="with --method: keep the photo's colours (luminance only)",
    )
    stylize.add_argument(
        "--output", "-o", type=_path, help="output folder (default: a new folder in data/output/stylize/)"
    )
    stylize.add_argument(
        "--size", type=int, help="resize inputs to this long side first (default: as they are)"
    )
    stylize.add_argument(
        "--batch-size", type=int, default=4, help="images per forward pass in folders (default 4)"
    )
    stylize.add_argument(
        "--blend", type=float, default=0.0,
        help="videos: mix each frame with the previous output, 0-0.9 (less flicker, trails; default 0)",
    )  # fmt: skip
    stylize.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="number format of the network: float32, bfloat16, or auto (bfloat16 only where the "
        "hardware has it and it measures faster; whatever it was trained in) (default auto)",
    )
    stylize.add_argument("--overwrite", action="store_true", help="allow replacing existing outputs")
    stylize.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    translate = sub.add_parser(
        "translate",
        help="translate images, folders or videos with a CycleGAN generator (notebook 07)",
        epilog="Outputs are named as `stylize` names them, each with a JSON sidecar. The model is a "
        ".keras file written by nst_tf.gan.train_cyclegan (python -m benchmarks.cyclegan).",
    )
    translate.add_argument("inputs", nargs="+", type=_path, metavar="INPUT", help="image, folder or video")
    which = translate.add_mutually_exclusive_group()
    which.add_argument("--model", "-m", type=_path, help="a CycleGAN .keras file (nst_tf.gan.train_cyclegan)")
    which.add_argument(
        "--style", default=None,
        help="a CycleGAN that ships trained, by name (`list` shows them; default: the first, starry_night)",
    )  # fmt: skip
    translate.add_argument(
        "--direction", choices=("x2y", "y2x"), default="x2y",
        help="x2y: G, photo -> painting (default); y2x: F, painting -> photo",
    )  # fmt: skip
    for action in stylize._actions:  # the output options of stylize, the same
        if action.dest in ("size", "batch_size", "blend", "precision", "overwrite", "quiet"):
            translate._add_action(action)
    translate.add_argument(
        "--output", "-o", type=_path, help="output folder (default: a new folder in data/output/translate/)"
    )


def _run_fast(args) -> int:
    import dataclasses as dc

    from nst_tf.fast_config import TrainConfig
    from nst_tf.files import printable

    if args.command == "train":
        from nst_tf import fast

        changes = {
            f.name: getattr(args, f.name)
            for f in dc.fields(TrainConfig)
            if getattr(args, f.name, None) is not None
        }
        config = TrainConfig().replace(**changes).validate()
        if not args.resume:  # before the run folder is made (fast.train checks again, resumed runs too)
            from nst_tf import resources

            layers = [*config.content_layers, *config.style_layers]
            resources.check_train_memory(
                config.size, config.batch_size, config.width, config.res_blocks, layers
            )
        out = _model_output(args, config)
        if args.resume:  # the checkpoint's settings; --steps sets a new total
            config = TrainConfig(steps=args.steps) if args.steps else None
        result = fast.train(config, output=out, resume=args.resume, progress=not args.quiet)
        print(
            f"saved {printable(result.path)} (+ .json, checkpoint {printable(fast.checkpoint_path(out).name)}): "
            f"{result.steps_done} steps, {result.images_per_s:.2f} images/s"
        )
        if result.stopped == "completed" and not args.no_check:
            _check_network(fast, result)
        if result.stopped == "interrupted":
            word, status = _stop_status()
            print(
                f"{word}: saved the model and checkpoint at step {result.steps_done}; --resume continues",
                file=sys.stderr,
            )
            return status
        if result.stopped != "completed":
            print("stopped early: the loss became NaN or infinite — lower --lr", file=sys.stderr)
            return 1
        return 0
    return _stylize(args)


def _check_network(fast, result) -> None:
    """Print whether the network does more than recolour (``fast.check_network``) and add it to
    the model's sidecar."""
    import json

    from nst_tf.files import printable, write_text

    check = fast.check_network(result.model, result.config)
    if not check:
        return
    size = next(iter(check.values()))["size"]
    print(
        f"check at {size} px, network / default transfer (bar: SSIM and edge correlation >= 0.9x, "
        "style distance <= 1.5x):"
    )
    for name, row in check.items():
        n, t, r = row["network"], row["transfer"], row["ratio"]
        verdict = "meets the bar" if row["meets_bar"] else "below the bar"
        print(
            f"  {printable(name)}: SSIM {n['ssim']:.2f} / {t['ssim']:.2f} ({r['ssim']:.2f}x), edge "
            f"{n['edge_correlation']:.2f} / {t['edge_correlation']:.2f} ({r['edge_correlation']:.2f}x), "
            f"style distance {n['style_distance']:.2f} / {t['style_distance']:.2f} "
            f"({r['style_distance']:.2f}x), loss {n['loss']:.3g} / {t['loss']:.3g}: {verdict}"
        )
    if not all(row["meets_bar"] for row in check.values()):
        print("  below the bar: train longer (--resume --steps N), or change --style-weight")
    if result.path is not None:
        side = result.path.with_suffix(".json")
        meta = json.loads(side.read_text())
        meta["check"] = check
        write_text(side, json.dumps(meta, indent=2))


def _model_output(args, config) -> Path:
    from nst_tf.errors import ConfigError
    from nst_tf.files import check_names, check_writable, output_dir, printable, user_path

    if args.output:
        out = Path(os.path.abspath(user_path(args.output)))
        if out.suffix != ".keras":
            raise ConfigError(f"model path {printable(out)} must end in .keras")
        if os.path.lexists(out) and not (args.overwrite or args.resume):
            raise ConfigError(
                f"{printable(out)} already exists: pass --overwrite, --resume, or another --output"
            )
        check_names(
            [out, out.with_suffix(".json"), out.with_suffix(".ckpt.npz"), out.with_suffix(".data.json")]
        )
        check_writable(out.parent, need_bytes=64 << 20, fix="choose another --output")
        return out
    if args.resume:
        raise ConfigError("--resume needs --output: the model whose checkpoint to continue")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = _reserve(
        output_dir().absolute() / "train" / f"{stamp}-{_slug(config.style)}" / "x", False, False
    )
    return folder.with_name("model.keras")


def _stylize(args) -> int:
    from nst_tf import fast
    from nst_tf.errors import ConfigError

    _check_apply_args(args)
    if args.method is not None:  # any style in one pass: AdaIN / WCT and a decoder
        model, args.model = _arbitrary_stylizer(args)
    elif args.decoder is not None or args.alpha != 1.0 or args.preserve_color:
        raise ConfigError("--decoder, --alpha and --preserve-color go with --method adain|wct")
    else:
        if args.style is not None:  # a network that ships trained
            args.model = fast.shipped_model(args.style)
        model = fast.load_model(args.model, args.precision)
    return _apply_network(args, model)


def _check_apply_args(args) -> None:
    """The output options ``stylize`` and ``translate`` share, checked before any model loads."""
    from nst_tf.errors import ConfigError

    if args.batch_size < 1 or (args.size is not None and not 16 <= args.size <= 16384):
        raise ConfigError("--batch-size must be >= 1 and --size from 16 to 16384")


def _translate(args) -> int:
    """``translate``: generator G (or F) of a CycleGAN over images, folders and videos, as ``stylize``."""
    from nst_tf import gan
    from nst_tf.files import sha256_file, user_path

    _check_apply_args(args)
    if args.model is None:
        args.model = gan.shipped_cyclegan(args.style)
    model = gan.load_generator(args.model, args.direction, args.precision)
    path = user_path(args.model)
    args.model = {"kind": "CycleGAN generator (nst_tf.gan)", "path": str(path), "sha256": sha256_file(path, 12),
                  "direction": args.direction, "network": model.name}  # fmt: skip
    return _apply_network(args, model)


def _apply_network(args, model) -> int:
    """Every input of ``stylize`` / ``translate`` through ``model``, named by one rule."""
    from nst_tf import fast
    from nst_tf.files import output_dir, printable, user_path

    if args.output:
        out_dir = Path(os.path.abspath(user_path(args.output)))
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = output_dir().absolute() / args.command / f"{stamp}-{_slug(_model_name(args.model))}"
    written, failed = 0, []
    plan = _stylize_outputs(args.inputs, out_dir)
    from nst_tf.files import check_names

    check_names(
        [p for _, kind, out in plan for p in (out.values() if kind == "folder" else [out])],
        fix="choose a shorter --output or rename the input",
    )
    for src, kind, out in plan:
        try:
            if kind == "folder":
                report = fast.stylize_folder(
                    model, src, out_dir / _folder_name(src), size=args.size, batch_size=args.batch_size,
                    model_path=args.model, overwrite=args.overwrite, progress=not args.quiet, outputs=out,
                )  # fmt: skip
                for path, reason in report.failed.items():
                    print(f"error: {printable(path)}: {printable(reason)}", file=sys.stderr)
                print(report.summary())
                written += len(report.written)
                failed += list(report.failed)
            elif kind == "video":
                meta = fast.stylize_video(
                    model, src, out, size=args.size, blend=args.blend, model_path=args.model,
                    overwrite=args.overwrite,
                )  # fmt: skip
                print(
                    f"saved {printable(out)} (+ .json): {meta['frames']} frames at {meta['fps']:g} fps, "
                    f"flicker {meta['flicker_output']:.2f} (input {meta['flicker_input']:.2f})"
                )
                written += 1
            else:
                out = fast.stylize_image(
                    model, src, out, size=args.size, model_path=args.model, overwrite=args.overwrite
                )
                print(f"saved {printable(out)} (+ .json)")
                written += 1
        except Exception as err:  # noqa: BLE001 - this input, in one line (never a traceback); go on
            print(f"error: {printable(src)}: {printable(fast.failure_reason(err))}", file=sys.stderr)
            failed.append(str(src))
    if failed:
        print(f"{written} written, {len(failed)} failed", file=sys.stderr)
        return 1
    return 0


def _model_name(model) -> str:
    """A run folder's name for the network: the model file's, or "adain-<style>" for a stylizer."""
    if isinstance(model, dict) and "direction" in model:
        return f"{Path(model['path']).stem}-{model['direction']}"
    if isinstance(model, dict):
        return f"{model['method']}-{Path(model['style']['path']).stem}"
    return str(model)


def _arbitrary_stylizer(args):
    """``stylize --method``: the AdaIN/WCT stylizer for ``--style`` and what its sidecars record."""
    from nst_tf import arbitrary
    from nst_tf.data import resolve_image
    from nst_tf.errors import ConfigError
    from nst_tf.files import sha256_file

    if args.style is None:
        raise ConfigError("--method needs --style IMAGE (any painting: a name or a path), not --model")
    if not 0.0 <= args.alpha <= 1.0 or not 16 <= args.style_size <= 4096:
        raise ConfigError("--alpha must be from 0 to 1 and --style-size from 16 to 4096")
    path = Path(args.decoder) if args.decoder is not None else arbitrary.shipped_decoder()
    decoder = arbitrary.load_decoder(path, args.precision)
    style = resolve_image(args.style, "style")
    model = arbitrary.stylizer(
        decoder, style, method=args.method, alpha=args.alpha, style_size=args.style_size,
        preserve_color=args.preserve_color, precision=args.precision,
    )  # fmt: skip
    info = {
        "kind": f"{args.method} stylizer (nst_tf.arbitrary)", "method": args.method, "alpha": args.alpha,
        "preserve_color": args.preserve_color, "style": {"path": str(style), "sha256": sha256_file(style, 12),
        "long_side": args.style_size}, "decoder": {"path": str(path), "sha256": sha256_file(path, 12)},
    }  # fmt: skip
    return model, info


def _folder_name(src: Path) -> Path:
    """The output folder of a folder input: its own name (also for ``.`` or ``photos/``)."""
    return Path(os.path.basename(os.path.abspath(src)))


def _stylize_outputs(inputs, out_dir: Path) -> list[tuple[Path, str, object]]:
    """``(input, kind, output)`` for each ``stylize`` input, kind "image" or "video" (output: a path)
    or "folder" (output: {image: path} for each image below it). Every output of the run is named by
    one rule (:func:`nst_tf.files.unique_names`, as ``transfer --content``): ``a.png`` and ``a.jpg``,
    as arguments or in a folder, give ``a.png`` and ``a-2.png``, never one file twice."""
    from nst_tf import fast
    from nst_tf.data import images_below
    from nst_tf.files import unique_names, user_path

    items, rels = [], []
    for src in inputs:
        src = user_path(src)
        if src.is_dir():
            found = images_below(src, exclude=out_dir)
            items.append((src, "folder", found))
            rels += [(_folder_name(src) / f.relative_to(src)).with_suffix(".png") for f in found]
        else:
            kind = "video" if src.suffix.lower() in fast.VIDEO_EXTENSIONS else "image"
            items.append((src, kind, None))
            rels.append(Path(src.name or "image").with_suffix(".mp4" if kind == "video" else ".png"))
    names = iter(unique_names(rels))
    plan = []
    for src, kind, found in items:
        out = {f: out_dir / next(names) for f in found} if kind == "folder" else out_dir / next(names)
        plan.append((src, kind, out))
    return plan
