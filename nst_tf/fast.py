"""Fast style transfer: train a feed-forward network once, then stylise in one pass (notebook 05).

Optimisation-based transfer (``nst_tf.transfer``) solves one problem per image.
Johnson, Alahi & Fei-Fei (2016) train an *image transformation network* once,
per style, on many photos, with the same perceptual loss (content + style + TV
through VGG19, ``nst_tf.losses``); afterwards stylising is one forward pass.
Ulyanov et al. (2016) did the same for textures: a generator maps noise to
images with the style's Gram statistics.

This module applies the networks: ``stylize_image`` / ``stylize_folder`` / ``stylize_video``,
every output with a JSON sidecar. The networks themselves are in :mod:`nst_tf.networks`, their
training in :mod:`nst_tf.training`; both are re-exported here, so ``fast.build_transformer``,
``fast.train`` and the rest are what notebook 05 and the CLI call.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from nst_tf import data as nst_data
from nst_tf import resources
from nst_tf.errors import ConfigError, ImageError, NSTError
from nst_tf.fast_config import TrainConfig
from nst_tf.files import (
    FolderReport,
    printable,
    progress_bar,
    unique_names,
    user_path,
    write_files,
)
from nst_tf.images import (
    image_info,
    load_image,
    save_with_sidecar,
    scaled_size,
    to_uint8,
)
from nst_tf.networks import (  # noqa: F401 - the API of nst_tf.fast
    FLOAT32_LAYERS,
    FORMAT,
    PADDINGS,
    SHIPPED_DIR,
    CropLike,
    ReflectPad,
    _reason,
    build_texture_generator,
    build_transformer,
    check_signature,
    load_model,
    model_precision,
    network_width,
    save_model,
    shipped_model,
    shipped_models,
    stylize,
    with_precision,
)
from nst_tf.training import (  # noqa: F401
    BAR,
    HELD_OUT,
    TRAIN_BUNDLED,
    VALIDATION_SIDE,
    PerceptualLoss,
    TrainResult,
    _held_out_paths,
    _Photos,
    _sha256,
    _validation_photos,
    check_network,
    check_size,
    checkpoint_path,
    compare_with_transfer,
    default_strategy,
    evaluate,
    make_train_step,
    photo_dataset,
    read_checkpoint,
    train,
    training_photos,
    transfer_config,
    validation_dir,
)

__all__ = [
    "BAR",
    "CropLike",
    "FLOAT32_LAYERS",
    "FORMAT",
    "HELD_OUT",
    "PADDINGS",
    "PerceptualLoss",
    "ReflectPad",
    "SHIPPED_DIR",
    "TRAIN_BUNDLED",
    "TrainConfig",
    "TrainResult",
    "VALIDATION_SIDE",
    "VIDEO_EXTENSIONS",
    "build_texture_generator",
    "build_transformer",
    "check_network",
    "check_signature",
    "check_size",
    "checkpoint_path",
    "compare_with_transfer",
    "default_strategy",
    "evaluate",
    "failure_reason",
    "flicker",
    "load_model",
    "make_train_step",
    "model_precision",
    "network_width",
    "photo_dataset",
    "read_checkpoint",
    "save_model",
    "shipped_model",
    "shipped_models",
    "stylize",
    "stylize_folder",
    "stylize_image",
    "stylize_video",
    "train",
    "training_photos",
    "transfer_config",
    "validation_dir",
    "with_precision",
]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def _model_info(model_path) -> dict:
    """What a sidecar records of the network: its path and hash, or ``model_path`` itself when it is
    already a description (a dict: the AdaIN/WCT stylizers of ``nst_tf.arbitrary``)."""
    if isinstance(model_path, dict):
        return dict(model_path)
    path = user_path(model_path) if model_path is not None else None
    return {"path": str(path), "sha256": _sha256(path)} if path is not None and path.is_file() else {}


def _image_sidecar(
    src: Path, model_info: dict, seconds: float, shape, extra: dict | None = None, model=None
) -> dict:
    from nst_tf.transfer import versions

    meta = {
        "kind": "nst_tf fast style transfer output",
        "model": model_info,
        "precision": None if model is None else model_precision(model),
        "input": {"path": str(src), "sha256": _sha256(src)},
        "image_size": list(shape[:2]),
        "seconds": round(seconds, 4),
        **(extra or {}),
        "versions": versions(),
    }
    return meta


def stylize_image(
    model, src, out, *, size: int | None = None, model_path=None, overwrite: bool = False
) -> Path:
    """Stylise one image file; write ``out`` (.png/.jpg) and ``out.json``. Returns ``out``.

    Refused (one-line ConfigError, before decoding where the file's header gives its size) if the
    forward pass would not fit in memory (:func:`nst_tf.resources.check_stylize_memory`)."""
    src, out = user_path(src), user_path(out)
    img = _load_within_memory(src, size, network_width(model))
    t0 = time.perf_counter()
    styled = to_uint8(stylize(model, img))
    seconds = time.perf_counter() - t0
    side = _image_sidecar(src, _model_info(model_path), seconds, styled.shape, model=model)
    return save_with_sidecar(styled, out, side, overwrite=overwrite)


def _load_within_memory(src: Path, size: int | None, width: int) -> np.ndarray:
    """``load_image(src, size)``, refused first (one-line ConfigError) if stylising it with a
    width-``width`` network would not fit in memory: from the header's size before decoding (a
    16k x 16k photo is refused unread), else from the decoded image."""
    planned = _planned_hw(src, size)
    if planned is not None:
        resources.check_stylize_memory(planned, width)
    img = load_image(src, size)
    if planned is None:
        resources.check_stylize_memory(img.shape[:2], width)
    return img


def _planned_hw(src: Path, size: int | None) -> tuple[int, int] | None:
    """(height, width) ``src`` will have once loaded at long side ``size``, from its header alone
    (no decoding); None when the header cannot tell (then the image is checked once decoded)."""
    try:
        info = image_info(src)
    except (NSTError, OSError):
        return None
    hw = (int(info["height"]), int(info["width"]))
    return scaled_size(hw, size) if size else hw


def failure_reason(err: BaseException) -> str:
    """One line for an error while stylising one input: an NSTError's own message, else what went
    wrong inside Keras/TensorFlow (type and first line, at most 200 characters)."""
    if isinstance(err, NSTError):
        return str(err)
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    first = printable(first if len(first) <= 200 else first[:197] + "...")
    return f"stylising failed ({type(err).__name__}{': ' + first if first else ''}) — check the model and the input"


def stylize_folder(
    model, folder, out_dir, *, size: int | None = None, batch_size: int = 4, model_path=None,
    overwrite: bool = False, progress: bool | None = None, outputs: dict | None = None,
) -> FolderReport:  # fmt: skip
    """Stylise every image in ``folder`` (and below) into ``out_dir`` (same relative names, .png;
    two inputs that would share a name, ``a.jpg`` and ``a.png``, become ``a.png`` and ``a-2.png``:
    :func:`nst_tf.files.unique_names`), ``batch_size`` images of equal size per forward pass (fewer
    where that many would not fit in memory). A file that cannot be read, stylised or written is
    reported in ``FolderReport.failed`` and skipped; every other file is still produced.

    ``outputs`` ({image: output path}): the images to stylise and where each goes, in order, instead
    of every image below ``folder`` named as above (``stylize`` with several inputs names them all
    with one rule)."""
    folder, out_dir = user_path(folder), user_path(out_dir)
    if outputs is None:
        paths = nst_data.images_below(folder, exclude=out_dir)
        rels = unique_names([p.relative_to(folder).with_suffix(".png") for p in paths])
        outputs = {p: out_dir / rel for p, rel in zip(paths, rels)}
    paths = [Path(p) for p in outputs]
    targets = {Path(p): Path(o) for p, o in outputs.items()}
    report, info = FolderReport(total=len(paths)), _model_info(model_path)
    width = network_width(model)
    t0 = time.perf_counter()
    pending: list[tuple[Path, np.ndarray]] = []

    def flush():
        if not pending:
            return
        t = time.perf_counter()
        try:
            styled = stylize(model, np.stack([img for _, img in pending]))
        except Exception as err:  # noqa: BLE001 - the model on these images: report them, go on
            for src, _ in pending:
                report.failed[str(src)] = failure_reason(err)
            pending.clear()
            return
        seconds = (time.perf_counter() - t) / len(pending)
        for (src, _), img in zip(pending, styled):
            out = targets[src]
            try:
                img8 = to_uint8(img)
                side = _image_sidecar(src, info, seconds, img8.shape, {"batch": len(pending)}, model)
                save_with_sidecar(img8, out, side, overwrite=overwrite)
                report.written.append(out)
            except NSTError as err:
                report.failed[str(src)] = str(err)
        pending.clear()

    for src in progress_bar(desc="stylize", enabled=progress, iterable=paths):
        try:
            img = _load_within_memory(src, size, width)
        except (NSTError, OSError) as err:
            report.failed[str(src)] = str(err)
            continue
        fits = max(1, min(batch_size, resources.largest_stylize_batch(img.shape[:2], width)))
        if pending and (img.shape != pending[0][1].shape or len(pending) >= fits):
            flush()
        pending.append((src, img))
    flush()
    report.seconds = time.perf_counter() - t0
    return report


def flicker(frames) -> float:
    """Mean absolute difference between consecutive frames, grey levels (0 for a still video)."""
    prev, total, n = None, 0.0, 0
    for frame in frames:
        frame = np.asarray(frame, np.float32)
        if prev is not None:
            total += float(np.mean(np.abs(frame - prev)))
            n += 1
        prev = frame
    return total / max(n, 1)


def stylize_video(
    model, src, out, *, size: int | None = None, blend: float = 0.0, model_path=None, overwrite: bool = False
) -> dict:
    """Stylise a video frame by frame (imageio + imageio-ffmpeg) at the source frame rate.

    ``blend`` in [0, 1) mixes each output with the previous one (``out_t = (1 - blend) f(x_t)
    + blend out_{t-1}``): a cheap flicker filter that trails moving edges. Odd frame sides are
    cut by one pixel (H.264 needs even ones). Returns the sidecar's dict, with the flicker (mean
    absolute frame-to-frame difference) of the input and of the output.
    """
    import imageio.v2 as iio

    src, out = user_path(src), user_path(out)
    if not 0 <= blend < 1:
        raise ConfigError(f"blend must be in [0, 1), got {blend!r}")
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".avi"):
        raise ConfigError(f"video output '{printable(out)}' must end in .mp4, .mov, .mkv or .avi")
    try:
        reader = iio.get_reader(src, format="FFMPEG")
        video = reader.get_meta_data()
        fps, frame_wh = float(video.get("fps") or 25.0), video.get("size")
    except Exception as err:
        raise ImageError(f"cannot read video '{printable(src)}': {printable(err)} — check the file") from None
    try:
        hw = (int(frame_wh[1]), int(frame_wh[0]))
    except (TypeError, ValueError, IndexError):
        hw = None
    if hw is not None and min(hw) > 0:  # one frame per pass: refused before any frame is decoded
        try:
            resources.check_stylize_memory(scaled_size(hw, size) if size else hw, network_width(model))
        except ConfigError:
            reader.close()
            raise
    stats = {"frames": 0, "input_diff": 0.0, "output_diff": 0.0}
    t0 = time.perf_counter()

    def write(fh):
        writer = iio.get_writer(fh.name, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                macro_block_size=1, pixelformat="yuv420p")  # fmt: skip
        prev_in = prev_out = None
        try:
            for frame in reader:
                frame = load_image(np.asarray(frame), size)
                h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
                frame = frame[:h, :w]
                styled = stylize(model, frame)
                if prev_out is not None and blend > 0:
                    styled = (1 - blend) * styled + blend * prev_out
                styled8 = to_uint8(styled)
                if prev_in is not None:
                    stats["input_diff"] += float(np.mean(np.abs(frame - prev_in)))
                    stats["output_diff"] += float(np.mean(np.abs(styled8.astype(np.float32) - prev_out)))
                writer.append_data(styled8)
                prev_in, prev_out = frame, styled8.astype(np.float32)
                stats["frames"] += 1
        finally:
            writer.close()
            reader.close()
        if stats["frames"] == 0:
            raise ImageError(f"video '{printable(src)}' has no frames")

    meta: dict = {}

    def write_meta(fh):
        from nst_tf.transfer import versions

        meta.update(
            kind="nst_tf fast style transfer video",
            model=_model_info(model_path),
            precision=model_precision(model),
            input={"path": str(src), "sha256": _sha256(src)},
            fps=fps,
            frames=stats["frames"],
            blend=blend,
            flicker_input=round(stats["input_diff"] / max(stats["frames"] - 1, 1), 4),
            flicker_output=round(stats["output_diff"] / max(stats["frames"] - 1, 1), 4),
            seconds=round(time.perf_counter() - t0, 3),
            versions=versions(),
        )
        fh.write(json.dumps(meta, indent=2).encode("utf-8"))

    write_files({out: write, out.with_suffix(".json"): write_meta}, overwrite=overwrite)
    return meta
