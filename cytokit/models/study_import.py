"""Import the study's pickled Keras 2.12 models without ever running their pickles.

Each ``*.model_pickle`` holds one call, ``deserialize_model_from_bytecode(<.keras zip>)``.
A restricted unpickler accepts that one global and keeps only the bytes; the zip is then
read as data (architecture from ``config.json``, weights from the HDF5 file with h5py)
into :func:`cytokit.models.network.build_cnn`, so Keras' own loader never sees the
untrusted archive, and saved as a Keras 3 ``.keras`` file.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cytokit.data.outputs import check_file_output
from cytokit.data.tree import shown
from cytokit.models import safe_h5

#: The one global a study model pickle may name (module, qualified name).
KERAS_WRAPPER = ("keras.saving.pickle_utils", "deserialize_model_from_bytecode")
#: The study's three models, as published (``<name>.model_pickle``).
STUDY_MODEL_NAMES = ("baseline", "tuned", "augmented")
PICKLE_SUFFIX = ".model_pickle"
ARCHIVE_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
#: Largest archive member read into memory (the study's are ~1 MB): a zip bomb stops here.
MAX_MEMBER_BYTES = 256 * 2**20
#: Largest JSON member read (the study's config.json is 12 KB, its metadata.json 70 bytes), and the deepest
#: nesting parsed (the study's config goes 7 deep): a config nested 100,000 deep never reaches the parser.
MAX_JSON_BYTES = {"config.json": 2**20, "metadata.json": 64 * 2**10}
MAX_JSON_DEPTH = 64
#: Largest pickle file read (the study's are 1.3 MB); checked with ``stat`` before reading.
MAX_PICKLE_BYTES = 64 * 2**20
#: Bounds of a network the importer rebuilds: far above the study's CNN (250 px, 8-64 filters,
#: Dense 256, 21 classes, about 120,000 parameters), far below what would exhaust memory.
MAX_INPUT_SIZE = 1024
MAX_FILTERS = 1024
MAX_KERNEL = 15
MAX_UNITS = 4096
MAX_PARAMETERS = 50_000_000
#: Longest metadata text kept from an archive (printed in the one-line summary).
MAX_METADATA_CHARS = 80
#: Opcodes that build or call objects by other routes than the wrapper's one REDUCE.
REFUSED_OPCODES = frozenset({"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD", "EXT1", "EXT2", "EXT4",
                             "PERSID", "BINPERSID"})
_GLOBAL_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST"})
#: Layers with weights, and the group prefix Keras 2.12 gave them in ``model.weights.h5``.
_H5_PREFIX = {"Conv2D": "conv2d", "BatchNormalization": "batch_normalization", "Dense": "dense"}
_H5_LAYERS = "_layer_checkpoint_dependencies"


class StudyModelError(ValueError):
    """The file is not a study model the importer can read, with the reason."""


class UnsafePickleError(StudyModelError):
    """The pickle asks for something beyond the Keras model wrapper; nothing was run."""


# --------------------------------------------------------------------------- pickle


class _WrappedArchive:
    """What the stand-in returns: the zip bytes, and nothing a pickle can alter."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __setstate__(self, state):
        raise UnsafePickleError("refusing BUILD on the Keras model wrapper: the study's pickles never do that")


def _capture_archive(data) -> _WrappedArchive:
    """Stand-in for Keras' wrapper: keep the archive bytes instead of loading a model."""
    if not isinstance(data, (bytes, bytearray)):
        raise StudyModelError(
            f"not a study model pickle: the Keras model wrapper got {type(data).__name__}, not archive bytes")
    return _WrappedArchive(bytes(data))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`KERAS_WRAPPER` (to the stand-in): no other global, no persistent id.

    REDUCE can only call a callable that ``find_class`` handed out, so the stand-in is the
    only thing a call in the pickle can reach; everything else the pickle can build is
    plain data (str, bytes, numbers, containers), none of it callable.
    """

    def find_class(self, module, name):
        if (module, name) == KERAS_WRAPPER:
            return _capture_archive
        raise UnsafePickleError(
            f"refusing to load {module}.{name} from the pickle: only the Keras model wrapper "
            f"{'.'.join(KERAS_WRAPPER)} is allowed")

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"refusing persistent id {pid!r} in the pickle: only the Keras model wrapper is allowed")


def _opcode_names(data: bytes) -> list[str]:
    """Every opcode of the pickle, read without running it (a malformed pickle is not a model).

    Data after the pickle's STOP is refused: unpickling would ignore it, so it could only
    be something smuggled alongside the model.
    """
    try:
        ops = [(op.name, pos) for op, _arg, pos in pickletools.genops(data)]
    except Exception as err:  # genops raises ValueError and friends on malformed input
        raise StudyModelError(f"not a study model pickle: it is not a readable pickle ({err})") from err
    if not ops or ops[-1][0] != "STOP":
        raise StudyModelError("not a study model pickle: it has no STOP opcode")
    trailing = len(data) - ops[-1][1] - 1
    if trailing:
        raise UnsafePickleError(f"refusing a pickle with {trailing:,} bytes after its STOP opcode: a study model "
                                "pickle ends there")
    return [name for name, _pos in ops]


def _check_opcodes(data: bytes) -> None:
    """Refuse, before unpickling, anything beyond one global and one call: no object building."""
    names = _opcode_names(data)
    refused = sorted(REFUSED_OPCODES.intersection(names))
    if refused:
        raise UnsafePickleError(f"refusing opcode {', '.join(refused)} in the pickle: "
                                "a study model pickle only calls the Keras model wrapper")
    n_globals = sum(n in _GLOBAL_OPCODES for n in names)
    n_calls = names.count("REDUCE")
    if n_globals > 1 or n_calls > 1:
        raise UnsafePickleError(
            f"refusing a pickle with {n_globals} globals and {n_calls} calls: a study model "
            "pickle names the Keras model wrapper once and calls it once")


def safe_unpickle(data: bytes) -> bytes:
    """The ``.keras`` zip bytes inside a study model pickle, without running any code from it.

    Raises :class:`UnsafePickleError` when the pickle names anything but the Keras
    wrapper (nothing from it is run), :class:`StudyModelError` for a pickle of anything else.
    """
    if len(data) > MAX_PICKLE_BYTES:
        raise StudyModelError(f"not a study model pickle: {len(data):,} bytes, over the {MAX_PICKLE_BYTES:,}-byte limit")
    _check_opcodes(data)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except StudyModelError:
        raise
    except Exception as err:  # UnpicklingError, EOFError, TypeError (call of a non-callable) ...
        raise StudyModelError(f"not a study model pickle: it could not be unpickled ({err})") from err
    if not isinstance(obj, _WrappedArchive):
        raise StudyModelError(
            f"not a study model pickle: it holds a {type(obj).__name__}, not the Keras model wrapper "
            f"{'.'.join(KERAS_WRAPPER)}(<archive bytes>)")
    return obj.data


# --------------------------------------------------------------------------- archive


@dataclass(frozen=True)
class StudyArchive:
    """The three members of a Keras 2.12 ``.keras`` zip, parsed where they are JSON."""

    config: dict
    metadata: dict
    weights_h5: bytes


def _read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """One member's bytes, refusing sizes no study model has (a zip bomb stops here)."""
    info = zf.getinfo(name)
    limit = MAX_JSON_BYTES.get(name, MAX_MEMBER_BYTES)
    if info.file_size > limit:
        raise StudyModelError(f"the model archive's {name} claims {info.file_size:,} bytes, over the {limit:,}-byte "
                              "limit; refusing to inflate it")
    data = zf.read(info)
    if len(data) > limit:  # the zip's directory understated it
        raise StudyModelError(f"the model archive's {name} holds over {limit:,} bytes; refused")
    return data


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without parsing it (strings skipped)."""
    bare = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    step = np.isin(bare, (0x5B, 0x7B)).astype(np.int64) - np.isin(bare, (0x5D, 0x7D))
    return int(np.cumsum(step).max(initial=0))


def _parse_json(raw: bytes, name: str):
    """A JSON member, parsed only when it nests no deeper than :data:`MAX_JSON_DEPTH`."""
    depth = _json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise StudyModelError(f"the model archive's {name} nests {depth:,} levels deep (a Keras model's is under "
                              f"{MAX_JSON_DEPTH}); refused without parsing it")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise StudyModelError(f"the model archive's {name} is unreadable JSON ({err})") from None


def read_archive(zip_bytes: bytes) -> StudyArchive:
    """Open the ``.keras`` zip in memory and check it has what a Keras 2.12 model saves."""
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            missing = [m for m in ARCHIVE_MEMBERS if m not in zf.namelist()]
            if missing:
                raise StudyModelError(
                    f"the model archive lacks {', '.join(missing)} (it holds: {', '.join(zf.namelist()) or 'nothing'})")
            raw = {m: _read_member(zf, m) for m in ARCHIVE_MEMBERS}
    except StudyModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError,
            RuntimeError, zlib.error) as err:
        raise StudyModelError(f"the pickle's model archive is not a readable .keras zip ({err})") from err
    config = _parse_json(raw["config.json"], "config.json")
    metadata = _parse_json(raw["metadata.json"], "metadata.json")
    if not isinstance(metadata, dict):
        raise StudyModelError(f"the model archive's metadata.json holds a {type(metadata).__name__}, not a mapping")
    return StudyArchive(config=config, metadata=_printable_metadata(metadata), weights_h5=raw["model.weights.h5"])


def _printable_metadata(metadata: dict) -> dict:
    """Metadata with every text printable: control characters (terminal escapes) shown as escapes, length capped."""
    def clean(value):
        if isinstance(value, str):
            text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in value)
            return text if len(text) <= MAX_METADATA_CHARS else text[:MAX_METADATA_CHARS] + "..."
        if isinstance(value, (bool, int, float)) or value is None:
            return value
        return clean(json.dumps(value, ensure_ascii=True))
    return {clean(str(k)): clean(v) for k, v in metadata.items()}


# --------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class StudySpec:
    """What :func:`cytokit.models.network.build_cnn` needs to rebuild a study model."""

    n_classes: int
    image_size: int
    dropout: float | None


def _layers(config: dict) -> list[dict]:
    """The Sequential config's layers, InputLayer excluded (it has no weights)."""
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        found = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise StudyModelError(f"the study's models are Sequential; this archive holds {found!r}")
    layers = config.get("config", {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise StudyModelError("the model config lists no layers")
    if not all(isinstance(layer, dict) and isinstance(layer.get("config"), dict) for layer in layers):
        raise StudyModelError("the model config is malformed: its layers are not all mappings with a 'config' "
                              "mapping; it is not a study model")
    return [layer for layer in layers if layer.get("class_name") != "InputLayer"]


def _input_shape(config: dict) -> list:
    """``batch_input_shape`` of the InputLayer (or of the first layer, as Keras 2 also wrote it)."""
    for layer in config["config"]["layers"]:
        shape = layer.get("config", {}).get("batch_input_shape")
        if shape:
            return list(shape)
    raise StudyModelError("the model config gives no input shape")


def study_spec(config: dict) -> StudySpec:
    """Class count, image size and dropout of a study model, from its ``config.json``.

    Every number that sizes the network is checked against the bounds above before
    anything is built, so a crafted config cannot make the import allocate gigabytes.
    """
    try:
        spec = _spec(config)
        _check_size(config, spec)
    except StudyModelError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as err:
        raise StudyModelError(f"the model archive's config.json is malformed ({type(err).__name__}: {err}); "
                              "it is not a study model") from None
    return spec


def _check_size(config: dict, spec: StudySpec) -> int:
    """The network's parameter count, worked out from the config; a StudyModelError beyond the bounds."""
    if not 1 <= spec.image_size <= MAX_INPUT_SIZE:
        raise StudyModelError(f"the model takes {spec.image_size} px images; the importer accepts 1 to {MAX_INPUT_SIZE}")
    side, channels, total = spec.image_size, 3, 0
    for layer in _layers(config):
        cls, cfg = layer["class_name"], layer["config"]
        if cls == "Conv2D":
            filters, kernel = int(cfg["filters"]), _pair(cfg["kernel_size"])
            strides = _pair(cfg.get("strides") or 1)
            if not 1 <= filters <= MAX_FILTERS or not all(1 <= int(k) <= MAX_KERNEL for k in kernel) \
                    or not all(1 <= int(t) <= MAX_KERNEL for t in strides):
                raise StudyModelError(f"Conv2D layer {cfg.get('name')} has {filters} filters of {kernel} strides "
                                      f"{strides}; the importer accepts 1-{MAX_FILTERS} filters and sizes 1-{MAX_KERNEL}")
            total += int(kernel[0]) * int(kernel[1]) * channels * filters + filters
            side = _side(side, int(kernel[0]), int(strides[0]), cfg.get("padding"))
            channels = filters
        elif cls == "BatchNormalization":
            total += 4 * channels
        elif cls == "MaxPooling2D":
            pool = _pair(cfg["pool_size"])
            strides = _pair(cfg.get("strides") or pool)
            if not all(1 <= int(k) <= MAX_KERNEL for k in (*pool, *strides)):
                raise StudyModelError(f"MaxPooling2D layer {cfg.get('name')} pools {pool} strides {strides}; "
                                      f"the importer accepts sizes 1-{MAX_KERNEL}")
            side = _side(side, int(pool[0]), int(strides[0]), cfg.get("padding"))
        elif cls == "Flatten":
            channels, side = channels * side * side, 1
        elif cls == "Dense":
            units = int(cfg["units"])
            if not 1 <= units <= MAX_UNITS:
                raise StudyModelError(f"Dense layer {cfg.get('name')} has {units:,} units; the importer accepts "
                                      f"1 to {MAX_UNITS:,} (the study's has 256)")
            total += channels * units + units
            channels = units
        if side < 1:
            raise StudyModelError(f"layer {cfg.get('name')} shrinks the image to nothing")
        if total > MAX_PARAMETERS:
            raise StudyModelError(f"the model config describes over {MAX_PARAMETERS:,} parameters by layer "
                                  f"{cfg.get('name')}; the study's CNN has about 120,000: refusing to build it")
    return total


def _side(side: int, window: int, stride: int, padding) -> int:
    """Output side of a convolution or pooling window (Keras' ``valid`` and ``same`` padding)."""
    if padding == "same":
        return -(-side // stride)
    return (side - window) // stride + 1


def _spec(config: dict) -> StudySpec:
    layers = _layers(config)
    shape = _input_shape(config)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
        raise StudyModelError(f"expected square RGB input (None, S, S, 3); the model takes {tuple(shape)}")
    dense = [layer for layer in layers if layer["class_name"] == "Dense"]
    if not dense:
        raise StudyModelError("the model config has no Dense layer to give the class count")
    drops = [layer["config"]["rate"] for layer in layers if layer["class_name"] == "Dropout"]
    if len(drops) > 1:
        raise StudyModelError(f"the model has {len(drops)} Dropout layers; the study's CNN has at most one")
    dropout = float(drops[0]) if drops else None
    if dropout is not None and not 0 <= dropout < 1:
        raise StudyModelError(f"the model's Dropout rate is {dropout}; a rate is in [0, 1)")
    return StudySpec(n_classes=int(dense[-1]["config"]["units"]), image_size=int(shape[1]), dropout=dropout)


def _pair(value) -> tuple:
    """``3`` and ``[3, 3]`` (Keras 2 JSON) and ``(3, 3)`` (Keras 3) all read as ``(3, 3)``."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _layer_tokens(class_name: str, cfg: dict) -> list[str]:
    """A layer as the words that decide its output, equal for Keras 2 JSON and Keras 3 configs.

    A Dense or Conv2D with a fused activation gives two tokens, so the study's
    ``Dense`` + ``Activation('relu')`` reads the same as ``Dense(activation='relu')``.
    """
    act = cfg.get("activation", "linear")
    act_token = [] if act in (None, "linear") else [f"Activation {act}"]
    if class_name == "Conv2D":
        return [f"Conv2D {cfg['filters']} kernel {_pair(cfg['kernel_size'])} strides {_pair(cfg.get('strides', 1))} "
                f"padding {cfg.get('padding')} dilation {_pair(cfg.get('dilation_rate', 1))} "
                f"groups {cfg.get('groups', 1)} bias {cfg.get('use_bias', True)}"] + act_token
    if class_name == "BatchNormalization":
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        axis = -1 if axis == 3 else axis  # channels of a rank-4 tensor: Keras 2 wrote [3], Keras 3 -1
        return [f"BatchNormalization axis {axis} epsilon {cfg.get('epsilon')} "
                f"center {cfg.get('center', True)} scale {cfg.get('scale', True)}"]
    if class_name == "Activation":
        return [f"Activation {act}"]
    if class_name == "MaxPooling2D":
        pool = _pair(cfg["pool_size"])
        return [f"MaxPooling2D {pool} strides {_pair(cfg.get('strides') or pool)} padding {cfg.get('padding')}"]
    if class_name == "Flatten":
        return ["Flatten"]
    if class_name == "Dense":
        return [f"Dense {cfg['units']} bias {cfg.get('use_bias', True)}"] + act_token
    if class_name == "Dropout":
        return [f"Dropout {float(cfg['rate'])}"]
    raise StudyModelError(f"layer type {class_name} ({cfg.get('name')}) is not part of the study's CNN")


def _tokens(pairs) -> list[tuple[str, str]]:
    """(token, layer name) for every token of a list of (class name, config) pairs."""
    return [(tok, cfg.get("name", "?")) for cls, cfg in pairs for tok in _layer_tokens(cls, cfg)]


def check_architecture(config: dict, model) -> None:
    """Raise a clear error at the first layer where the study's config and ``model`` differ."""
    try:
        study = _tokens((layer["class_name"], layer["config"]) for layer in _layers(config))
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise StudyModelError(f"the model archive's config.json is malformed ({type(err).__name__}: {err})") from None
    ours = _tokens((type(layer).__name__, layer.get_config()) for layer in model.layers)
    for i, (s, o) in enumerate(zip(study, ours)):
        if s[0] != o[0]:
            raise StudyModelError(
                f"the study model differs from cytokit.models.network.build_cnn at step {i}: "
                f"study {s[1]}: {s[0]!r}, build_cnn {o[1]}: {o[0]!r}")
    if len(study) != len(ours):
        longer, extra = ("study", study[len(ours):]) if len(study) > len(ours) else ("build_cnn", ours[len(study):])
        raise StudyModelError(
            f"the {longer} network has {len(extra)} more steps than the other: {', '.join(t for t, _ in extra)}")


# --------------------------------------------------------------------------- weights


def _vars(group, shapes: list[tuple]) -> list:
    """``vars/0..k-1`` of one layer group, each checked (header only) to declare its shape in ``shapes``."""
    names = sorted(group["vars"].keys(), key=int) if "vars" in group else []
    if names != [str(i) for i in range(len(names))]:
        raise StudyModelError(f"weights group {group.name} has vars {names}, expected 0..{len(names) - 1}")
    if len(names) != len(shapes):
        raise StudyModelError(f"weights group {group.name} holds {len(names)} arrays; the layer needs {len(shapes)}")
    return [safe_h5.weights_dataset(group["vars"], n, shape, f"{group.name}/vars/{n}")
            for n, shape in zip(names, shapes)]


def _has_vars(obj) -> bool:
    """True for a layer group that stores at least one variable (weightless layers store none)."""
    import h5py

    return isinstance(obj, h5py.Group) and isinstance(obj.get("vars"), h5py.Group) and len(obj["vars"]) > 0


def _groups_by_class(layers_group) -> dict[str, list]:
    """Weighted layer groups per layer class, in the order Keras numbered them.

    Keras 2.12 named the groups by class and counter, not by the config's layer names,
    and each weighted layer used two counter values (``conv2d``, ``conv2d_2``, ...,
    ``conv2d_14``), so names cannot be matched to the config; within a class the
    numbering follows the layer order.
    """
    found: dict[str, list] = {}
    for cls, prefix in _H5_PREFIX.items():
        pattern = re.compile(rf"{prefix}(?:_(\d+))?")
        hits = [(int(m.group(1) or 0), name) for name in layers_group
                if (m := pattern.fullmatch(name)) and _has_vars(layers_group[name])]
        found[cls] = [layers_group[name] for _, name in sorted(hits)]
    return found


def _read_study_weights(archive: StudyArchive, shapes: list[list[tuple]]) -> list[tuple[str, list[np.ndarray]]]:
    """(config layer name, arrays) for every weighted layer, in the config's layer order.

    ``shapes`` are the weight shapes of the rebuilt network's weighted layers, in order.
    The whole file is inspected first (:func:`cytokit.models.safe_h5.inspect`: nothing
    that reads outside it, no filters, plain numeric datasets); then every array's
    declared shape and type are checked against its layer; only then is any read.
    """
    import h5py

    weighted = [layer for layer in _layers(archive.config) if layer["class_name"] in _H5_PREFIX]
    if len(weighted) != len(shapes):
        raise StudyModelError(f"the study model has {len(weighted)} layers with weights, build_cnn {len(shapes)}")
    try:
        with h5py.File(io.BytesIO(archive.weights_h5), "r") as h5:
            safe_h5.inspect(h5)
            if _H5_LAYERS not in h5:
                raise StudyModelError(f"model.weights.h5 has no {_H5_LAYERS} group (top level: {', '.join(h5)})")
            groups = _groups_by_class(h5[_H5_LAYERS])
            found = []
            for layer, layer_shapes in zip(weighted, shapes):
                cls, name = layer["class_name"], layer["config"].get("name")
                if not groups[cls]:
                    raise StudyModelError(f"model.weights.h5 has no weights left for {cls} layer {name}")
                found.append((name, _vars(groups[cls].pop(0), layer_shapes)))
            left = {cls: len(g) for cls, g in groups.items() if g}
            if left:
                raise StudyModelError(f"model.weights.h5 holds weights for more layers than the config lists: {left}")
            out = [(name, [safe_h5.read_array(ds, ds.name) for ds in datasets]) for name, datasets in found]
    except StudyModelError:
        raise
    except safe_h5.WeightsFileError as err:
        raise StudyModelError(f"the model archive's model.weights.h5: {err}") from None
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise StudyModelError(f"the model archive's model.weights.h5 is unreadable ({err})") from err
    return out


def _weight_shapes(model) -> list[list[tuple]]:
    """The shapes of each weighted layer's weights in ``model``, in layer order."""
    return [[tuple(w.shape) for w in layer.weights] for layer in model.layers if layer.weights]


def _set_study_weights(model, weights: list[tuple[str, list[np.ndarray]]]):
    """Copy the study's arrays into ``model``'s weighted layers, checking every shape first."""
    targets = [layer for layer in model.layers if layer.weights]
    if len(targets) != len(weights):
        raise StudyModelError(f"the study model has {len(weights)} layers with weights, build_cnn {len(targets)}")
    for layer, (name, arrays) in zip(targets, weights):
        want = [tuple(w.shape) for w in layer.weights]
        got = [a.shape for a in arrays]
        if want != got:
            raise StudyModelError(f"weights of study layer {name} have shapes {got}; {layer.name} needs {want}")
    for layer, (_, arrays) in zip(targets, weights):
        layer.set_weights(arrays)
    return model


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportedModel:
    """A rebuilt study model with what the one-line summary reports."""

    model: object
    spec: StudySpec
    metadata: dict


def load_study_pickle(pickle_path) -> ImportedModel:
    """Rebuild a study model from its ``.model_pickle`` as a ``build_cnn`` network (not saved).

    The study scaled its batches before the model; ``build_cnn`` does it in its first
    layer, so the rebuilt model takes uint8 pixels. That weightless layer is not part of
    the study's saved network and is left out of the architecture check.
    """
    from cytokit.models.network import build_cnn, study_layers  # TensorFlow: loaded only to rebuild a model

    archive = read_archive(safe_unpickle(Path(pickle_path).read_bytes()))
    spec = study_spec(archive.config)
    model = build_cnn(spec.n_classes, image_size=spec.image_size, dropout=spec.dropout)
    check_architecture(archive.config, SimpleNamespace(layers=study_layers(model)))
    _set_study_weights(model, _read_study_weights(archive, _weight_shapes(model)))
    return ImportedModel(model=model, spec=spec, metadata=archive.metadata)


def _check_pickle_file(pickle_path) -> Path:
    """``pickle_path`` if it is a file no larger than :data:`MAX_PICKLE_BYTES` (read by ``stat`` only)."""
    path = Path(pickle_path).expanduser()
    if not path.is_file():
        raise StudyModelError(f"{shown(path)} is not a file: pass a *{PICKLE_SUFFIX} file from the study's repository")
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise StudyModelError(f"{shown(path)} is {size:,} bytes, over the {MAX_PICKLE_BYTES:,}-byte limit of a study "
                              "model pickle (the study's are about 1.3 MB): not read")
    return path


def import_study_model(pickle_path, out_path, force: bool = True) -> Path:
    """Convert one study ``.model_pickle`` to a Keras 3 ``.keras`` file (written atomically).

    The output is never the pickle itself, nor inside a dataset; without ``force`` it
    must not exist yet.
    """
    from cytokit.models.training import save_model

    _check_pickle_file(pickle_path)
    check_file_output(out_path, "OUT", inputs=[pickle_path], force=force)
    return save_model(load_study_pickle(pickle_path).model, out_path)


def summary(imported: ImportedModel) -> str:
    """One line: layers, parameters, dropout, classes, and the Keras that saved it."""
    from cytokit.models.network import param_count

    spec, meta = imported.spec, imported.metadata
    dropout = "none" if spec.dropout is None else f"{spec.dropout:g}"
    return (f"{len(imported.model.layers)} layers, {param_count(imported.model):,} parameters, "
            f"dropout {dropout}, {spec.n_classes} classes, input {spec.image_size}x{spec.image_size}x3 "
            f"(saved by Keras {meta.get('keras_version', '?')} on {meta.get('date_saved', '?')})")


def main_import(pickle_path, out_path, force: bool = False) -> Path:
    """``cytokit import-study-model PICKLE OUT.keras``: convert and print a one-line summary.

    Every check (the output's place, the pickle's size) comes before anything is read.
    """
    from cytokit.models.training import save_model

    _check_pickle_file(pickle_path)
    check_file_output(out_path, "OUT", inputs=[pickle_path], force=force)
    try:
        imported = load_study_pickle(pickle_path)
    except StudyModelError as err:
        raise type(err)(f"{shown(pickle_path)}: {err}; nothing was written") from None
    out = save_model(imported.model, out_path)
    print(f"{shown(out)}: {summary(imported)}")
    return out


def import_all(pickled_dir, out_dir) -> dict[str, Path]:
    """Convert the study's baseline, tuned and augmented pickles into ``out_dir/<name>.keras``."""
    pickled_dir, out_dir = Path(pickled_dir), Path(out_dir)
    missing = [n for n in STUDY_MODEL_NAMES if not (pickled_dir / f"{n}{PICKLE_SUFFIX}").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{pickled_dir} lacks {', '.join(n + PICKLE_SUFFIX for n in missing)}")
    return {n: import_study_model(pickled_dir / f"{n}{PICKLE_SUFFIX}", out_dir / f"{n}.keras")
            for n in STUDY_MODEL_NAMES}
