"""Read PyTorch ``state_dict`` files into numpy arrays without importing torch.

Supports the two serialisation formats of ``torch.save``: the legacy pickle
stream (torch < 1.6; used by the official LPIPS weights and by torchvision's
``vgg16-397923af.pth``) and the zip archive (torch >= 1.6). Files ending in
``.npz`` are read with numpy, so a ``state_dict`` converted elsewhere with::

    np.savez(out, **{k: v.numpy() for k, v in torch.load(path).items()})

is accepted too. Only the pickle globals a plain tensor ``state_dict`` needs are
resolved; anything else is refused, so a file cannot run code when read.
"""

import collections
import os
import pickle
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
  "DoubleStorage": np.float64,
  "FloatStorage": np.float32,
  "HalfStorage": np.float16,
  "LongStorage": np.int64,
  "IntStorage": np.int32,
  "ShortStorage": np.int16,
  "CharStorage": np.int8,
  "ByteStorage": np.uint8,
  "BoolStorage": np.bool_,
}


class _Storage:
  """A typed flat buffer; ``data`` is filled once its bytes have been read."""

  def __init__(self, dtype, numel):
    self.dtype = np.dtype(dtype)
    self.numel = numel
    self.data = None


class _TensorRef:
  """A strided view into a storage, materialised after all storages are read."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, offset
    self.size, self.stride = tuple(size), tuple(stride)

  def to_numpy(self):
    flat = self.storage.data[self.offset :]
    strides = [s * self.storage.dtype.itemsize for s in self.stride]
    return np.lib.stride_tricks.as_strided(flat, self.size, strides).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(tensor, *unused):
  return tensor


_GLOBALS = {
  ("collections", "OrderedDict"): collections.OrderedDict,
  ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
  ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
  ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
  """Unpickles a ``state_dict`` into ``_TensorRef``s over ``_Storage``s."""

  def __init__(self, file, storages):
    super().__init__(file, encoding="utf-8")
    self._storages = storages

  def find_class(self, module, name):
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    if (module, name) not in _GLOBALS:
      raise pickle.UnpicklingError(
        f"unsupported object {module}.{name}: only tensor state_dicts can be "
        "read without torch"
      )
    return _GLOBALS[(module, name)]

  def persistent_load(self, pid):
    kind, dtype, key, _, numel = pid[:5]
    if kind != "storage":
      raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError("storage views are not supported")
    if key not in self._storages:
      self._storages[key] = _Storage(dtype, numel)
    return self._storages[key]


def _read_legacy(f):
  if pickle.load(f) != _LEGACY_MAGIC:
    raise ValueError("bad magic number")
  if pickle.load(f) != _LEGACY_PROTOCOL:
    raise ValueError("unsupported legacy PyTorch protocol version")
  pickle.load(f)  # sys_info (endianness, type sizes)
  storages = {}
  obj = _Unpickler(f, storages).load()
  for key in pickle.load(f):
    storage = storages[key]
    (numel,) = struct.unpack("<q", f.read(8))
    storage.data = np.frombuffer(
      f.read(numel * storage.dtype.itemsize), storage.dtype
    )
  return obj


def _read_zip(path):
  with zipfile.ZipFile(path) as archive:
    pkl_names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pkl_names) != 1:
      raise ValueError(f"{path}: zip archive without a single data.pkl")
    prefix = pkl_names[0][: -len("data.pkl")]
    storages = {}
    with archive.open(pkl_names[0]) as f:
      obj = _Unpickler(f, storages).load()
    for key, storage in storages.items():
      storage.data = np.frombuffer(
        archive.read(f"{prefix}data/{key}"), storage.dtype
      )
  return obj


def load_state_dict(path):
  """Reads a ``.pth`` / ``.pt`` state_dict or an ``.npz`` into numpy.

  Args:
    path: local file path.

  Returns:
    dict mapping parameter names (e.g. ``"features.0.weight"``) to arrays in
    PyTorch layout.

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: the file is not a tensor state_dict in a supported format.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"weights file not found: {path}")
  if path.endswith(".npz"):
    with np.load(path) as npz:
      return {k: npz[k] for k in npz.files}
  try:
    if zipfile.is_zipfile(path):
      obj = _read_zip(path)
    else:
      with open(path, "rb") as f:
        obj = _read_legacy(f)
  except (
    pickle.UnpicklingError,
    EOFError,
    KeyError,
    ValueError,
    struct.error,
  ) as e:
    raise ValueError(
      f"{path}: cannot read as a PyTorch state_dict ({e}); convert it to "
      ".npz as the torch_weights module docstring shows"
    ) from e
  if not isinstance(obj, dict) or not all(
    isinstance(v, _TensorRef) for v in obj.values()
  ):
    raise ValueError(f"{path}: not a flat name -> tensor state_dict")
  return {k: v.to_numpy() for k, v in obj.items()}
