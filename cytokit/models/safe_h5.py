"""An untrusted Keras weights file (HDF5): every object checked by its header before a byte of data is read.

HDF5 can make a read reach outside its own file: external storage (a dataset whose
bytes sit in another file, ``/etc/passwd`` for one), virtual datasets (mapped from
other files), external links, and filters (code run on the stored bytes). The
``model.weights.h5`` Keras writes holds none of them: groups, hard links, and plain
numeric datasets stored contiguously without filters. :func:`inspect` walks the whole
file through its link tables and object headers and refuses anything else;
:func:`weights_dataset` checks a dataset's declared shape and type against what the
network needs, and only once every one passed does :func:`read_array` read any, so a
declared ``(10**6, 10**6)`` never allocates.
"""

from __future__ import annotations

import h5py
import numpy as np
from h5py import h5d

#: Objects (groups and datasets) a weights file may hold; the study's have about 250.
MAX_OBJECTS = 5000
#: Group nesting a weights file may have; the study's go 3 deep.
MAX_DEPTH = 16
#: Storage layouts that keep a dataset's bytes inside the file (virtual is refused).
INSIDE_THE_FILE = {h5d.COMPACT: "compact", h5d.CONTIGUOUS: "contiguous", h5d.CHUNKED: "chunked"}
#: Element types a weights file holds: floats (weights), integers (an optimizer's step count).
NUMERIC_KINDS = "fiu"


class WeightsFileError(ValueError):
    """The weights file holds something Keras never writes, or not the arrays the network needs."""


def inspect(h5: h5py.File) -> int:
    """Check every link and object of the file (headers only, no data read); returns how many there are.

    Refused: external and soft links, named datatypes, a nesting deeper than
    :data:`MAX_DEPTH` or more than :data:`MAX_OBJECTS` objects, and any dataset
    :func:`check_dataset` refuses.
    """
    count = 0
    stack = [(h5, "", 0)]
    while stack:
        group, path, depth = stack.pop()
        for name in group:
            where = f"{path}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise WeightsFileError(f"{where} is an external link to {link.filename!r} ({link.path}): a weights "
                                       "file that reads another file; refused before reading it")
            if not isinstance(link, h5py.HardLink):
                raise WeightsFileError(f"{where} is a {type(link).__name__}, which Keras never writes; refused")
            count += 1
            if count > MAX_OBJECTS:
                raise WeightsFileError(f"the weights file holds over {MAX_OBJECTS:,} objects (the study's hold about "
                                       "250); refused")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                if depth + 1 > MAX_DEPTH:
                    raise WeightsFileError(f"{where} is nested {depth + 1} groups deep; a weights file is at most "
                                           f"{MAX_DEPTH}; refused")
                stack.append((obj, where, depth + 1))
            elif isinstance(obj, h5py.Dataset):
                check_dataset(obj, where)
            else:
                raise WeightsFileError(f"{where} is a {type(obj).__name__}, which Keras never writes; refused")
    return count


def check_dataset(ds: h5py.Dataset, where: str) -> None:
    """Refuse a dataset whose bytes are not plainly inside the file, or that is not a plain numeric array."""
    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5d.VIRTUAL or ds.is_virtual:
        raise WeightsFileError(f"{where} is a virtual dataset (its data would be read from other files); refused "
                               "before reading it")
    if plist.get_external_count():
        outside = plist.get_external(0)[0].decode("utf-8", errors="replace")
        raise WeightsFileError(f"{where} keeps its data in an external file ({outside!r}): a weights file that reads "
                               "another file; refused before reading it")
    if plist.get_nfilters():
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        raise WeightsFileError(f"{where} is stored through HDF5 filter(s) {filters}; Keras writes none; refused "
                               "before reading it")
    if layout not in INSIDE_THE_FILE:
        raise WeightsFileError(f"{where} has HDF5 storage layout {layout}, which Keras never writes; refused")
    dtype = ds.dtype
    if dtype.kind not in NUMERIC_KINDS or dtype.fields or dtype.subdtype or dtype.hasobject:
        raise WeightsFileError(f"{where} holds {dtype} elements, not numbers; refused")


def weights_dataset(group: h5py.Group, name: str, shape: tuple, where: str) -> h5py.Dataset:
    """``group[name]`` when it is a float dataset declaring ``shape`` (its header only is read)."""
    obj = group.get(name)
    if not isinstance(obj, h5py.Dataset):
        kind = "nothing" if obj is None else f"a {type(obj).__name__.lower()}"
        raise WeightsFileError(f"{where} is {kind}, not a dataset of weights of shape {tuple(shape)}")
    if tuple(obj.shape) != tuple(shape):
        raise WeightsFileError(f"{where} declares shape {tuple(obj.shape)}; the network needs {tuple(shape)} there: "
                               "not read")
    if obj.dtype.kind != "f" or obj.dtype.itemsize not in (2, 4, 8):
        raise WeightsFileError(f"{where} holds {obj.dtype} elements; weights are floating point: not read")
    return obj


def read_array(obj: h5py.Dataset, where: str) -> np.ndarray:
    """A dataset :func:`weights_dataset` accepted, as float32, refused when a value is not finite."""
    values = np.asarray(obj[()], dtype=np.float32)
    if not np.isfinite(values).all():
        raise WeightsFileError(f"{where} holds {int((~np.isfinite(values)).sum()):,} values that are not finite "
                               "(NaN or infinity): a model with them predicts nothing")
    return values
