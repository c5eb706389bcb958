"""Reading PyTorch state_dict files without torch.

The files are written here in torch.save's two layouts (the legacy pickle
stream, checked against the official LPIPS v0.1 vgg.pth, and the zip archive),
with the same pickle globals torch emits.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

from hvrnn_tf.evaluation.metrics import torch_weights


class _Global:
  """Pickles as GLOBAL 'module name', like torch's own classes and functions."""

  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):
    raise AssertionError("never called: only pickled")


class _Tensor:
  """Pickles like torch.Tensor: _rebuild_tensor_v2(storage, offset, ...)."""

  def __init__(self, storage, size, stride):
    self.storage, self.size, self.stride = storage, size, stride

  def __reduce__(self):
    return (
      _Global("torch._utils", "_rebuild_tensor_v2"),
      (
        self.storage,
        0,
        self.size,
        self.stride,
        False,
        collections.OrderedDict(),
      ),
    )


class _StoragePickler(pickle._Pickler):  # pylint: disable=protected-access
  """Emits torch's persistent ids for storages (5 fields zip, 6 legacy)."""

  def __init__(self, file, legacy):
    super().__init__(file, protocol=2)
    self.legacy = legacy

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      pid = (
        "storage",
        _Global("torch", "FloatStorage"),
        obj.key,
        "cpu",
        obj.data.size,
      )
      return pid + (None,) if self.legacy else pid
    return None

  def save(self, obj, save_persistent_id=True):
    if isinstance(obj, _Global):
      self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
    else:
      super().save(obj, save_persistent_id)


class _Storage:
  def __init__(self, key, data):
    self.key, self.data = key, data


def save_state_dict(path, arrays, legacy=True, fortran_order=()):
  """Writes float32 `arrays` as torch.save would; names in `fortran_order`
  are stored column-major (a non-contiguous stride)."""
  storages, state = [], collections.OrderedDict()
  for i, (name, array) in enumerate(arrays.items()):
    array = np.asarray(array, np.float32)
    order = "F" if name in fortran_order else "C"
    storage = _Storage(str(i), array.ravel(order=order))
    elem_strides = [s // 4 for s in np.asarray(array, order=order).strides]
    state[name] = _Tensor(storage, array.shape, tuple(elem_strides))
    storages.append(storage)
  body = io.BytesIO()
  _StoragePickler(body, legacy).dump(state)
  if legacy:
    with open(path, "wb") as f:
      for header in (
        0x1950A86A20F9469CFC6C,
        1001,
        {"protocol_version": 1001, "little_endian": True},
      ):
        pickle.dump(header, f, protocol=2)
      f.write(body.getvalue())
      pickle.dump([s.key for s in storages], f, protocol=2)
      for s in storages:
        f.write(struct.pack("<q", s.data.size) + s.data.tobytes())
  else:
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("weights/data.pkl", body.getvalue())
      archive.writestr("weights/version", "3\n")
      for s in storages:
        archive.writestr(f"weights/data/{s.key}", s.data.tobytes())


ARRAYS = {
  "lin0.model.1.weight": np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1),
  "features.0.weight": np.random.default_rng(0).normal(size=(4, 3, 3, 3)),
  "features.0.bias": np.array([1.5, -2.0, 0.0, 3.25]),
}


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_state_dict_round_trips(tmp_path, legacy):
  path = str(tmp_path / "weights.pth")
  save_state_dict(
    path, ARRAYS, legacy=legacy, fortran_order=("features.0.weight",)
  )
  loaded = torch_weights.load_state_dict(path)
  assert list(loaded) == list(ARRAYS)
  for name, array in ARRAYS.items():
    assert loaded[name].dtype == np.float32
    np.testing.assert_array_equal(loaded[name], np.float32(array))


def test_npz_is_read_with_numpy(tmp_path):
  path = str(tmp_path / "weights.npz")
  np.savez(path, **ARRAYS)
  loaded = torch_weights.load_state_dict(path)
  np.testing.assert_array_equal(
    loaded["features.0.bias"], ARRAYS["features.0.bias"]
  )


def test_arbitrary_pickled_objects_are_refused(tmp_path):
  path = str(tmp_path / "evil.pth")
  with open(path, "wb") as f:
    for header in (0x1950A86A20F9469CFC6C, 1001, {}):
      pickle.dump(header, f, protocol=2)
    pickle.dump({"x": collections.Counter}, f, protocol=2)
  with pytest.raises(ValueError, match="collections.Cou"):
    torch_weights.load_state_dict(path)


def test_missing_and_foreign_files_give_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="not found"):
    torch_weights.load_state_dict(str(tmp_path / "nope.pth"))
  path = tmp_path / "not_torch.pth"
  path.write_bytes(pickle.dumps([1, 2, 3]))
  with pytest.raises(ValueError, match="not_torch.pth"):
    torch_weights.load_state_dict(str(path))
