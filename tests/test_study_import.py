"""Importing the study's pickled models: exact predictions, and no code run from a pickle."""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

from conftest import require_study_file, study_models_dir  # noqa: E402
from cytokit.data import pipeline  # noqa: E402
from cytokit.models import network, study_import  # noqa: E402
from cytokit.models.study_import import StudyModelError, UnsafePickleError  # noqa: E402

STUDY_MODELS = study_models_dir()
PICKLED = STUDY_MODELS / "pickled"
STUDY_PARAMS = 96_509
N_IMAGES = 16


def _pickled(name: str) -> Path:
    return require_study_file(PICKLED / f"{name}{study_import.PICKLE_SUFFIX}")


def _answer_key(name: str) -> Path:
    return require_study_file(STUDY_MODELS / f"{name}.keras")


def _call_pickle(module: str, name: str, arg: bytes) -> bytes:
    """A protocol-3 pickle of ``module.name(arg)``, written opcode by opcode (nothing imported)."""
    assert len(arg) < 256
    return (b"\x80\x03c" + f"{module}\n{name}\n".encode() + b"C" + bytes([len(arg)]) + arg
            + b"\x85R.")


def _wrapper_pickle(zip_bytes: bytes) -> bytes:
    """What the study's pickles look like: the Keras wrapper called on the archive bytes."""
    module, name = study_import.KERAS_WRAPPER
    return (b"\x80\x04c" + f"{module}\n{name}\n".encode() + b"B" + len(zip_bytes).to_bytes(4, "little")
            + zip_bytes + b"\x85R.")


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _study_members(name: str = "baseline") -> dict[str, bytes]:
    """The members of a real study archive, read through the safe path."""
    data = study_import.safe_unpickle(_pickled(name).read_bytes())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {m: zf.read(m) for m in zf.namelist()}


# --------------------------------------------------------------------------- the real models


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    _pickled("baseline")
    return study_import.import_all(PICKLED, tmp_path_factory.mktemp("imported"))


@pytest.fixture(scope="module")
def loaded(imported) -> dict:
    """The imported ``.keras`` files, loaded once (Keras 3 files written by this project)."""
    return {name: keras.saving.load_model(path, compile=False) for name, path in imported.items()}


@pytest.fixture(scope="module")
def real_images(real_sample) -> np.ndarray:
    """16 real images spread over the sample, read as the pipeline reads them (RGB, 250 px, uint8)."""
    paths = sorted(real_sample.rglob("*.jpg"))
    paths = paths[:: max(1, len(paths) // N_IMAGES)][:N_IMAGES]
    return np.stack([pipeline.load_image(str(p), 250).numpy() for p in paths])


def _predict(model, x) -> np.ndarray:
    return np.asarray(model(x, training=False))


@pytest.mark.parametrize("name", study_import.STUDY_MODEL_NAMES)
def test_import_reproduces_the_answer_key(name, loaded, real_images):
    ours = loaded[name]
    key = keras.saving.load_model(_answer_key(name), compile=False)
    for a, b in zip(ours.weights, key.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    got = _predict(ours, real_images)  # uint8: ours scales it with its first layer, Rescaling(1/255)
    rescaled = real_images.astype(np.float32) * np.float32(1 / 255)  # what that layer computes
    np.testing.assert_allclose(got, _predict(key, rescaled), rtol=0, atol=1e-7)
    expected = _predict(key, real_images.astype(np.float32) / np.float32(255))  # the study's division:
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)  # one float32 step apart on some levels
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert expected.max(axis=1).mean() > 0.5  # confident real predictions, not a trivial match


@pytest.mark.parametrize("name, dropout", [("baseline", None), ("tuned", 0.4), ("augmented", 0.4)])
def test_imported_architecture(name, dropout, loaded):
    model = loaded[name]
    drops = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert drops == ([] if dropout is None else [dropout])
    assert network.param_count(model) == STUDY_PARAMS
    assert model.input_shape == (None, 250, 250, 3) and model.output_shape == (None, 21)


def test_the_three_models_are_distinct(loaded):
    """Each pickle gives its own weights: import_all mixes nothing up."""
    last = [np.asarray(model.weights[-2]) for model in loaded.values()]
    assert not np.array_equal(last[0], last[1]) and not np.array_equal(last[1], last[2])


def test_main_import_prints_one_line(tmp_path, capsys):
    out = study_import.main_import(_pickled("tuned"), tmp_path / "tuned.keras")
    line = capsys.readouterr().out.strip()
    assert out.is_file() and "\n" not in line
    # 31 layers: the study's 30 behind build_cnn's weightless pixel/255 layer
    for part in ("96,509 parameters", "dropout 0.4", "21 classes", "31 layers", "Keras 2.12.0"):
        assert part in line


def test_import_never_calls_keras_loader(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("keras' loader was called on the untrusted archive")

    monkeypatch.setattr(keras.saving, "load_model", refuse)
    monkeypatch.setattr(keras.models, "load_model", refuse)
    assert study_import.import_study_model(_pickled("baseline"), tmp_path / "b.keras").is_file()


def test_study_pickle_names_only_the_wrapper():
    data = _pickled("baseline").read_bytes()
    assert study_import.safe_unpickle(data)[:4] == b"PK\x03\x04"


# --------------------------------------------------------------------------- hostile pickles


class _RunsShell:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _RunsEval:
    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return (builtins.eval, (self.source,))


def test_os_system_pickle_is_refused_without_running(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    evil = tmp_path / "evil.model_pickle"
    evil.write_bytes(pickle.dumps(_RunsShell(f"touch {shlex.quote(str(sentinel))}")))
    with pytest.raises(UnsafePickleError, match=r"refusing to load \w+\.system from the pickle"):
        study_import.import_study_model(evil, tmp_path / "out.keras")
    assert not sentinel.exists()
    assert not (tmp_path / "out.keras").exists()


def test_eval_pickle_is_refused_without_running(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    source = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        study_import.safe_unpickle(pickle.dumps(_RunsEval(source)))
    assert not sentinel.exists()


@pytest.mark.parametrize("module", ["keras.src.saving.pickle_utils", "os", "evil.keras.saving.pickle_utils"])
def test_wrapper_name_from_another_module_is_refused(module):
    name = study_import.KERAS_WRAPPER[1]
    with pytest.raises(UnsafePickleError, match=f"refusing to load {module}.{name}"):
        study_import.safe_unpickle(_call_pickle(module, name, b"PK\x03\x04"))


def test_the_wrapper_itself_only_hands_back_bytes():
    module, name = study_import.KERAS_WRAPPER
    assert study_import.safe_unpickle(_call_pickle(module, name, b"zip bytes")) == b"zip bytes"


@pytest.mark.parametrize("data, opcode", [
    (b"\x80\x02Pdoom\n.", "PERSID"),
    (b"\x80\x02(cos\nsystem\nS'true'\no.", "OBJ"),
    (b"\x80\x02(S'true'\nios\nsystem\n.", "INST"),
])
def test_object_building_opcodes_are_refused(data, opcode):
    with pytest.raises(UnsafePickleError, match=f"opcode {opcode}"):
        study_import.safe_unpickle(data)


class _Plain:
    def __init__(self):
        self.weights = [1, 2]


def test_pickled_instance_is_refused():
    with pytest.raises(UnsafePickleError, match="NEWOBJ"):
        study_import.safe_unpickle(pickle.dumps(_Plain()))


def test_second_call_is_refused():
    module, name = study_import.KERAS_WRAPPER
    one = _call_pickle(module, name, b"a")[:-1]  # drop STOP: the result stays on the stack
    twice = one + b"c" + f"{module}\n{name}\n".encode() + b"C\x01b\x85R" + b"\x86."
    with pytest.raises(UnsafePickleError, match="once"):
        study_import.safe_unpickle(twice)


# --------------------------------------------------------------------------- not a study model


@pytest.mark.parametrize("obj, kind", [({"weights": [1, 2]}, "dict"), ([1, 2, 3], "list"), (42, "int"),
                                       (b"PK\x03\x04", "bytes")])
def test_pickle_of_something_else_is_not_a_study_model(obj, kind, tmp_path):
    path = tmp_path / "other.model_pickle"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(StudyModelError, match=f"not a study model pickle: it holds a {kind}") as err:
        study_import.import_study_model(path, tmp_path / "out.keras")
    assert not isinstance(err.value, UnsafePickleError)


@pytest.mark.parametrize("data", [b"", b"hello", pickle.dumps({"a": 1})[:-3]])
def test_not_a_pickle_at_all(data):
    with pytest.raises(StudyModelError, match="not a study model pickle"):
        study_import.safe_unpickle(data)


def test_wrapper_called_on_non_bytes():
    module, name = study_import.KERAS_WRAPPER
    data = b"\x80\x03c" + f"{module}\n{name}\n".encode() + b"K\x07\x85R."
    with pytest.raises(StudyModelError, match="got int, not archive bytes"):
        study_import.safe_unpickle(data)


def test_corrupt_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.model_pickle"
    path.write_bytes(_wrapper_pickle(b"PK\x03\x04 this is no zip archive"))
    with pytest.raises(StudyModelError, match="not a readable .keras zip"):
        study_import.import_study_model(path, tmp_path / "out.keras")
    assert not (tmp_path / "out.keras").exists()


def test_zip_without_the_model_members(tmp_path):
    path = tmp_path / "partial.model_pickle"
    path.write_bytes(_wrapper_pickle(_zip({"metadata.json": b"{}"})))
    with pytest.raises(StudyModelError, match="lacks config.json, model.weights.h5"):
        study_import.import_study_model(path, tmp_path / "out.keras")


def test_corrupt_weights_file(tmp_path):
    members = _study_members() | {"model.weights.h5": b"\x89HDF\r\n\x1a\n truncated"}
    path = tmp_path / "badweights.model_pickle"
    path.write_bytes(_wrapper_pickle(_zip(members)))
    with pytest.raises(StudyModelError, match="model.weights.h5 is unreadable"):
        study_import.import_study_model(path, tmp_path / "out.keras")


def test_architecture_mismatch_names_the_layer(tmp_path):
    members = _study_members()
    config = json.loads(members["config.json"])
    conv = next(layer for layer in config["config"]["layers"] if layer["config"].get("name") == "conv2d_4")
    conv["config"]["filters"] = 48
    path = tmp_path / "wide.model_pickle"
    path.write_bytes(_wrapper_pickle(_zip(members | {"config.json": json.dumps(config).encode()})))
    with pytest.raises(StudyModelError,
                       match=r"differs from cytokit\.models\.network\.build_cnn .*conv2d_4.*Conv2D 48"):
        study_import.import_study_model(path, tmp_path / "out.keras")


def test_unsupported_layer_is_named():
    config = {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 250, 250, 3]}},
        {"class_name": "LSTM", "config": {"name": "lstm", "units": 4}}]}}
    with pytest.raises(StudyModelError, match="layer type LSTM"):
        study_import.check_architecture(config, network.build_cnn(21, 250))


def test_functional_model_is_refused():
    with pytest.raises(StudyModelError, match="Sequential"):
        study_import.study_spec({"class_name": "Functional", "config": {}})


def test_import_all_names_missing_pickles(tmp_path):
    with pytest.raises(FileNotFoundError, match="baseline.model_pickle, tuned.model_pickle"):
        study_import.import_all(tmp_path, tmp_path / "out")
