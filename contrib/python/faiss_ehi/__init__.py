# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""EHI tree indexes for Python Faiss (Debian's python3-faiss 1.7.3).

Every index this module returns is a genuine Faiss object: an instance of
``faiss.Index`` and, where it is one, of ``faiss.IndexIVF`` (an
``IndexEHITree`` is a ``faiss.IndexIVFFlat``). Python Faiss's numpy methods
(train, add, search, range_search, remove_ids, reconstruct, ...),
``faiss.ParameterSpace``, ``faiss.extract_index_ivf``, ``faiss.IndexIDMap``,
``faiss.IndexShards``, ``faiss.contrib`` and ``faiss.cvar.indexIVF_stats``
work on them, because the compiled part (_faiss_ehi) uses the Faiss inside
python3-faiss itself rather than a second copy.

Functions (same names and arguments as in faiss):

- ``index_factory(d, key, metric=faiss.METRIC_L2)``: also understands
  ``EHI<B>x<H>`` keys ("EHI64x2,Flat", "PCA64,EHI16x2,SQ8", ...);
- ``write_index``, ``read_index``, ``serialize_index``,
  ``deserialize_index``, ``clone_index``: the faiss_ehi file format, which
  holds the trees (and also wraps plain Faiss indexes);
- ``patch_faiss()``: makes faiss.index_factory, faiss.write_index,
  faiss.read_index, faiss.serialize_index, faiss.deserialize_index and
  faiss.clone_index accept EHI keys and indexes, and leaves their behaviour
  for everything else unchanged. ``FAISS_EHI_PATCH=1`` in the environment
  does it when faiss_ehi is imported, and ``python3 -m faiss_ehi script.py``
  runs an unmodified Faiss script with Faiss patched;
  ``FAISS_EHI_TRAINER=kmeans`` (or ``torch``) picks the tree trainer then;
- ``set_trainer('torch' | 'kmeans' | None)``: what ``index.train(x)`` uses
  to learn a tree (default: the LibTorch trainer when the module was built
  with it, else the k-means trainer);
- ``train_pairs(queries, docs, pairs, **params)``: EHI's joint training on
  relevance pairs (faiss_ehi::trainer::JointTrainer), returns a trained,
  empty index;
- ``EHITreeQuantizer(d, B, H)``: a tree to use as the quantizer of an IVF
  index built by hand; ``tree_quantizer(index)``: the tree of an index.

Errors from C++ arrive as RuntimeError with the C++ message (as in faiss);
arrays of the wrong type or shape raise TypeError or ValueError.
"""

import os

import numpy as np

import faiss  # first: _faiss_ehi uses python3-faiss's SWIG type table

from . import _faiss_ehi as _C

__all__ = [
    "index_factory", "write_index", "read_index", "serialize_index",
    "deserialize_index", "clone_index", "patch_faiss", "unpatch_faiss",
    "is_patched", "is_ehi", "set_trainer", "trainer_name", "train_pairs",
    "train_config_fields",
    "EHITreeQuantizer", "tree_quantizer", "has_torch", "MAGIC",
]

__version__ = _C.version()

#: First bytes of every file (and serialised array) in faiss_ehi's format.
MAGIC = b"FEHI"

#: True when the LibTorch trainer (and train_pairs) is built in.
has_torch = bool(_C.with_torch)


# ----------------------------------------------------------------- checks

def _check_int(value, name, minimum=None):
    """An int (numpy integers included, bool excluded) >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _as_matrix(x, name, d=None, dtype=np.float32, kinds="fiu"):
    """x as a C-contiguous 2-D array of dtype; TypeError for a non-numeric
    dtype, ValueError for a wrong shape (or wrong width d)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a 2-D numeric array, got "
                        f"{type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name} is not an array: {e}") from None
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must hold numbers "
                        f"({'integers' if kinds == 'iu' else 'reals'}), "
                        f"got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n x d), got shape "
                         f"{arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"{name} has {arr.shape[1]} columns, expected "
                         f"{d}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _as_ids(ids, name, n):
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1-D of length {n}, got shape "
                         f"{arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)


# -------------------------------------------------- checked proxy classes
#
# Python Faiss checks the array width with `assert`, which raises
# AssertionError (and disappears under python -O, leaving C++ to read past
# the array). The objects faiss_ehi hands out get a subclass of their Faiss
# proxy class that validates first and raises TypeError/ValueError; it adds
# no state, so isinstance and every Faiss function work as before. Pickling
# goes through faiss_ehi's format (no patch_faiss() needed).

_checked_classes = {}


def _checked_class(cls):
    if cls in _checked_classes or getattr(cls, "_faiss_ehi_checked", False):
        return _checked_classes.get(cls, cls)

    def train(self, x):
        return cls.train(self, _as_matrix(x, "x", self.d))

    def add(self, x):
        return cls.add(self, _as_matrix(x, "x", self.d))

    def add_with_ids(self, x, ids):
        x = _as_matrix(x, "x", self.d)
        return cls.add_with_ids(self, x, _as_ids(ids, "ids", x.shape[0]))

    def search(self, x, k, **kw):
        x = _as_matrix(x, "x", self.d)
        return cls.search(self, x, _check_int(k, "k", 1), **kw)

    def range_search(self, x, thresh, **kw):
        return cls.range_search(self, _as_matrix(x, "x", self.d),
                                float(thresh), **kw)

    def assign(self, x, k, *args, **kw):
        x = _as_matrix(x, "x", self.d)
        return cls.assign(self, x, _check_int(k, "k", 1), *args, **kw)

    def search_and_reconstruct(self, x, k, **kw):
        x = _as_matrix(x, "x", self.d)
        return cls.search_and_reconstruct(self, x, _check_int(k, "k", 1),
                                          **kw)

    def reconstruct(self, key, *args, **kw):
        return cls.reconstruct(self, _check_int(key, "key", 0), *args, **kw)

    def reconstruct_n(self, n0, ni, *args, **kw):
        n0, ni = _check_int(n0, "n0", 0), _check_int(ni, "ni", 0)
        if n0 + ni > self.ntotal:
            raise ValueError(f"reconstruct_n: vectors {n0}..{n0 + ni - 1} "
                             f"requested, the index holds {self.ntotal}")
        return cls.reconstruct_n(self, n0, ni, *args, **kw)

    def remove_ids(self, x):
        if not isinstance(x, faiss.IDSelector):
            arr = np.asarray(x)
            if arr.dtype.kind not in "iu":
                raise TypeError("remove_ids: ids must be integers or a "
                                f"faiss.IDSelector, got dtype {arr.dtype}")
            if arr.ndim != 1:
                raise ValueError("remove_ids: ids must be 1-D, got shape "
                                 f"{arr.shape}")
            x = np.ascontiguousarray(arr, dtype=np.int64)
        return cls.remove_ids(self, x)

    def __reduce__(self):
        # Pickle through faiss_ehi's format: it holds the trees, and the
        # class is rebuilt on loading (this subclass is made at run time).
        return (_unpickle_index, (serialize_index(self).tobytes(),))

    methods = dict(train=train, add=add, add_with_ids=add_with_ids,
                   search=search, range_search=range_search, assign=assign,
                   search_and_reconstruct=search_and_reconstruct,
                   reconstruct=reconstruct, reconstruct_n=reconstruct_n,
                   remove_ids=remove_ids)
    body = {name: fn for name, fn in methods.items() if hasattr(cls, name)}
    for fn in body.values():
        fn.__doc__ = getattr(cls, fn.__name__).__doc__
    body["__reduce__"] = __reduce__
    body["_faiss_ehi_checked"] = True
    body["__module__"] = cls.__module__
    body["__doc__"] = cls.__doc__
    sub = type(cls.__name__, (cls,), body)
    _checked_classes[cls] = sub
    return sub


def _adopt(base):
    """The most derived Faiss proxy for the index owned by `base` (a
    faiss.Index proxy fresh from _faiss_ehi), owning it in turn."""
    sub = faiss.downcast_index(base)
    if sub is not base and type(sub) is not type(base):
        # downcast_index returns a non-owning proxy: move the ownership.
        base.this.disown()
        sub.this.own(True)
    else:
        sub = base
    sub.__class__ = _checked_class(type(sub))
    return sub


# ------------------------------------------------------------- factory

def _has_ehi_token(key):
    # Same rule as the C++ factory: a comma-separated token starting "EHI".
    return any(tok.startswith("EHI") for tok in key.split(","))


def _factory_args(d, key, metric):
    d = _check_int(d, "d", 1)
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    return d, key, _check_int(metric, "metric")


def index_factory(d, key, metric=faiss.METRIC_L2):
    """faiss.index_factory that also builds EHI indexes (EHI<B>x<H> token).
    Keys without an EHI token give exactly what faiss.index_factory gives."""
    d, key, metric = _factory_args(d, key, metric)
    if not _has_ehi_token(key):
        return _orig("index_factory")(d, key, metric)
    return _adopt(_C.index_factory(d, key, metric))


def EHITreeQuantizer(d, B, H, metric=faiss.METRIC_L2, form="node"):
    """A new, untrained EHI tree (a faiss.Index whose B^H "vectors" are the
    leaves) to use as the coarse quantizer of an IVF index built by hand::

        q = faiss_ehi.EHITreeQuantizer(d, 16, 2)
        index = faiss.IndexIVFPQ(q, d, 16 ** 2, 8, 8)
        index.quantizer_trains_alone = 1   # the tree trains itself

    Python Faiss keeps q alive as long as index (referenced_objects)."""
    forms = {"paper": 0, "node": 1}
    if form not in forms:
        raise ValueError(f"form must be 'node' or 'paper', got {form!r}")
    return _adopt(_C.tree_quantizer(_check_int(d, "d", 1),
                                    _check_int(B, "B", 2),
                                    _check_int(H, "H", 1),
                                    _check_int(metric, "metric"),
                                    forms[form]))


def tree_quantizer(index):
    """The tree quantizer of an EHI index (a faiss.Index proxy that keeps
    `index` alive), or None when the index has none."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None or not _C.is_tree_quantizer(ivf.quantizer):
        return None
    q = ivf.quantizer
    q._faiss_ehi_owner = index  # the tree lives inside index
    return q


def is_ehi(index):
    """True if the index holds an EHI tree or encoder head (and therefore
    needs faiss_ehi's IO)."""
    if not isinstance(index, faiss.Index):
        raise TypeError(f"expected a faiss.Index, got {type(index).__name__}")
    return _C.is_ehi(index)


# ------------------------------------------------------------------- IO

def _check_index(index, what):
    if not isinstance(index, faiss.Index):
        raise TypeError(f"{what}: expected a faiss.Index, got "
                        f"{type(index).__name__}")


def write_index(index, f):
    """Write `index` (EHI or plain Faiss) in faiss_ehi's format to a file
    name or a faiss.IOWriter."""
    _check_index(index, "write_index")
    if isinstance(f, faiss.IOWriter):
        _C.write_index_writer(index, f)
    elif isinstance(f, (str, os.PathLike)):
        _C.write_index(index, os.fspath(f))
    else:
        raise TypeError("write_index: f must be a file name or a "
                        f"faiss.IOWriter, got {type(f).__name__}")


def read_index(f, io_flags=0):
    """Read an index in faiss_ehi's format from a file name or a
    faiss.IOReader. io_flags (Faiss's mmap flags) are not supported."""
    if io_flags:
        raise ValueError("read_index: faiss_ehi files do not support "
                         f"io_flags ({io_flags})")
    if isinstance(f, faiss.IOReader):
        return _adopt(_C.read_index_reader(f))
    if isinstance(f, (str, os.PathLike)):
        return _adopt(_C.read_index(os.fspath(f)))
    raise TypeError("read_index: f must be a file name or a faiss.IOReader,"
                    f" got {type(f).__name__}")


def serialize_index(index):
    """The index in faiss_ehi's format as a numpy uint8 array."""
    writer = faiss.VectorIOWriter()
    write_index(index, writer)
    return faiss.vector_to_array(writer.data)


def _as_bytes_array(data):
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def deserialize_index(data):
    """Inverse of serialize_index."""
    reader = faiss.VectorIOReader()
    faiss.copy_array_to_vector(_as_bytes_array(data), reader.data)
    return _adopt(_C.read_index_reader(reader))


def _unpickle_index(data):
    return deserialize_index(np.frombuffer(data, dtype=np.uint8))


def clone_index(index):
    """Deep copy of an index (EHI or plain), same class, same results."""
    _check_index(index, "clone_index")
    return _adopt(_C.clone_index(index))


# ------------------------------------------------------------ patching

_PATCHED = ("index_factory", "write_index", "read_index", "serialize_index",
            "deserialize_index", "clone_index")
_originals = {}


def _orig(name):
    """faiss's own function `name`, whether or not faiss is patched."""
    return _originals.get(name) or getattr(faiss, name)


def _file_magic(f):
    try:
        with open(f, "rb") as fh:
            return fh.read(len(MAGIC))
    except OSError:
        return b""  # let Faiss report the error in its own words


def _reader_magic(reader):
    """First bytes a VectorIOReader will return, or None for other readers
    (which cannot be looked into without consuming them)."""
    if not isinstance(reader, faiss.VectorIOReader):
        return None
    data, rp = reader.data, reader.rp
    if data.size() < rp + len(MAGIC):
        return b""
    return bytes(data.at(rp + i) for i in range(len(MAGIC)))


def _patched_index_factory(d, description, metric=faiss.METRIC_L2):
    if isinstance(description, str) and _has_ehi_token(description):
        return index_factory(d, description, metric)
    return _originals["index_factory"](d, description, metric)


def _patched_write_index(index, f, *args):
    if isinstance(index, faiss.Index) and not args and _C.is_ehi(index):
        return write_index(index, f)
    return _originals["write_index"](index, f, *args)


def _patched_read_index(f, *args):
    if isinstance(f, (str, os.PathLike)):
        magic = _file_magic(os.fspath(f))
    else:
        magic = _reader_magic(f)
    if magic == MAGIC:
        return read_index(f, *args)
    return _originals["read_index"](f, *args)


def _patched_serialize_index(index):
    writer = faiss.VectorIOWriter()
    _patched_write_index(index, writer)
    return faiss.vector_to_array(writer.data)


def _patched_deserialize_index(data):
    arr = np.asarray(data)
    if (arr.dtype == np.uint8 and arr.ndim == 1 and
            bytes(arr[:len(MAGIC)]) == MAGIC):
        return deserialize_index(arr)
    return _originals["deserialize_index"](data)


def _patched_clone_index(index):
    if isinstance(index, faiss.Index) and _C.is_ehi(index):
        return clone_index(index)
    return _originals["clone_index"](index)


def patch_faiss():
    """Make faiss.index_factory, write_index, read_index, serialize_index,
    deserialize_index and clone_index handle EHI keys and indexes. For
    everything else they call faiss's own functions unchanged. Idempotent.

    Only the attributes of the faiss module are replaced: code that did
    `from faiss import index_factory` before the patch keeps the original.
    """
    if _originals:
        return
    for name in _PATCHED:
        _originals[name] = getattr(faiss, name)
    patched = globals()
    for name in _PATCHED:
        fn = patched["_patched_" + name]
        fn.__name__ = name
        fn.__doc__ = (f"faiss.{name}, patched by faiss_ehi to also handle "
                      "EHI indexes.\n\n" + (_originals[name].__doc__ or ""))
        setattr(faiss, name, fn)


def unpatch_faiss():
    """Undo patch_faiss()."""
    for name, fn in _originals.items():
        setattr(faiss, name, fn)
    _originals.clear()


def is_patched():
    return bool(_originals)


# ------------------------------------------------------------ training

def set_trainer(kind, seed=None, niter=None):
    """Choose how index.train() learns EHI trees from now on (process-wide):
    'torch' (LibTorch, TorchTreeTrainer; needs has_torch), 'kmeans'
    (hierarchical k-means, KMeansTreeTrainer) or None (none: training an
    EHI index then raises). seed / niter set the k-means seed and
    iterations."""
    if kind is not None and not isinstance(kind, str):
        raise TypeError("kind must be 'torch', 'kmeans' or None")
    seed = -1 if seed is None else _check_int(seed, "seed", 0)
    niter = -1 if niter is None else _check_int(niter, "niter", 1)
    _C.set_trainer(kind, seed, niter)


def trainer_name():
    """Name of the registered tree trainer, or None."""
    return _C.trainer_name()


def train_pairs(queries, docs, pairs, return_history=False, **params):
    """EHI's joint encoder + tree training on relevance data
    (faiss_ehi::trainer::JointTrainer), with the trainer's progress output.

    queries: nq x d, docs: nd x d (real numbers, converted to float32);
    pairs: n x 2 integers (query row, relevant doc row). params: the fields
    of JointTrainerConfig, every one of them (train_config_fields() lists
    them with their types, defaults and help): B, H, epochs, batch, beam,
    d2l, encoder ('identity' or 'head'), form ('node' or 'paper'),
    doc_assign ('probability', 'nearest', 'soar'), lambda1, lambda2,
    lambda3, balance, routing, seed, threads, progress, ... Enumerations
    take their names (or integer values).

    Returns the trained, empty index (documents are NOT added: call
    index.add(docs)); with return_history=True, (index, history) where
    history is a list of per-epoch dicts. The GIL is released meanwhile.
    """
    if not has_torch:
        raise RuntimeError("train_pairs needs the LibTorch trainer; this "
                           "faiss_ehi was built without it (apt-get install "
                           "libtorch-dev, then rebuild)")
    q = _as_matrix(queries, "queries")
    d = _as_matrix(docs, "docs", q.shape[1])
    p = _as_matrix(pairs, "pairs", 2, dtype=np.int64, kinds="iu")
    if p.shape[0] == 0:
        raise ValueError("train_pairs: no pairs")
    if p[:, 0].min() < 0 or p[:, 0].max() >= q.shape[0]:
        raise ValueError(f"train_pairs: query ids must be in [0, "
                         f"{q.shape[0]})")
    if p[:, 1].min() < 0 or p[:, 1].max() >= d.shape[0]:
        raise ValueError(f"train_pairs: doc ids must be in [0, "
                         f"{d.shape[0]})")
    index, history = _C.train_pairs(q, d, p, params)
    index = _adopt(index)
    return (index, history) if return_history else index


def train_config_fields():
    """The keyword arguments of train_pairs: a list of (name, type, default,
    help), one per JointTrainerConfig field, in the trainer's order."""
    if not has_torch:
        raise RuntimeError("train_config_fields needs the LibTorch trainer; "
                           "this faiss_ehi was built without it")
    return _C._config_fields()


# Environment switches, read once on import:
# - FAISS_EHI_TRAINER=torch|kmeans picks the trainer of index.train();
# - FAISS_EHI_PATCH=1 patches faiss.
if os.environ.get("FAISS_EHI_TRAINER"):
    set_trainer(os.environ["FAISS_EHI_TRAINER"])
if os.environ.get("FAISS_EHI_PATCH", "") not in ("", "0"):
    patch_faiss()
