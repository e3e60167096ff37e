"""Google's Noto colour emoji, 64x64 RGB on white, as a TFDS builder: a small
real colour image set that can be had offline.

    python -m gan_jax.prepare --dataset=emoji

`fetch` gets the npm package `emoji-datasource-google@16.0.0` with `npm pack`
(74 MB; the images are Noto Emoji, Apache-2.0, the package MIT) and checks
the tarball's SHA-256. The builder reads its `img/google/64/` PNGs (RGBA)
straight from the tarball and composites each on white. The label is the
emoji's category in the package's `emoji.json` (10 categories). The split
is fixed: an emoji goes to `test` when the SHA-256 of its base image name is
0 mod 10, and its skin-tone variants go with it, so near-duplicates never
straddle the split (3,786 images: 3,458 train, 328 test). Images are
stored as raw uint8 tensors, so preparing needs no TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile

import numpy as np
import tensorflow_datasets as tfds

PACKAGE = "emoji-datasource-google@16.0.0"
TARBALL = "emoji-datasource-google-16.0.0.tgz"
TARBALL_SHA256 = "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"
SIZE = 64
_IMAGES = "package/img/google/64/"
_INDEX = "package/emoji.json"
CATEGORIES = ("Activities", "Animals & Nature", "Component", "Flags", "Food & Drink",
              "Objects", "People & Body", "Smileys & Emotion", "Symbols", "Travel & Places")
TEST_MODULUS = 10


def fetch(manual_dir: str) -> None:
  """Puts the checked tarball in `manual_dir`, unless it is already there."""
  path = os.path.join(manual_dir, TARBALL)
  if not os.path.exists(path):
    os.makedirs(manual_dir, exist_ok=True)
    subprocess.run(["npm", "pack", PACKAGE], cwd=manual_dir, check=True)
  with open(path, "rb") as f:
    actual = hashlib.sha256(f.read()).hexdigest()
  if actual != TARBALL_SHA256:
    raise ValueError(f"{path}: SHA-256 {actual}, expected {TARBALL_SHA256} ({PACKAGE}).")


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
  """(H, W, 4) uint8 -> (H, W, 3) uint8: colour * alpha + white * (1 - alpha)."""
  colour = rgba[..., :3].astype(np.float64)
  alpha = rgba[..., 3:].astype(np.float64) / 255.0
  return np.round(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def is_test(base_image: str) -> bool:
  return int(hashlib.sha256(base_image.encode()).hexdigest(), 16) % TEST_MODULUS == 0


def labelled_images(index: list[dict]) -> dict[str, tuple[int, str]]:
  """Image name -> (category index, split), over every emoji and skin tone."""
  out = {}
  for emoji in index:
    label = CATEGORIES.index(emoji["category"])
    split = "test" if is_test(emoji["image"]) else "train"
    for name in [emoji["image"]] + [v["image"] for v in emoji.get("skin_variations", {}).values()]:
      out[name] = (label, split)
  return out


def read_tarball(path: str) -> dict[str, list[tuple[str, np.ndarray, int]]]:
  """{split: [(image name, 64x64x3 uint8 on white, label)]}, sorted by name."""
  from PIL import Image

  splits: dict[str, list] = {"train": [], "test": []}
  with tarfile.open(path, "r:gz") as archive:
    labels = labelled_images(json.load(archive.extractfile(_INDEX)))
    for member in archive.getmembers():
      if not (member.name.startswith(_IMAGES) and member.name.endswith(".png")):
        continue
      name = member.name[len(_IMAGES):]
      if name not in labels:
        raise ValueError(f"{path}: {name} is not in {_INDEX}.")
      with Image.open(io.BytesIO(archive.extractfile(member).read())) as image:
        rgba = np.asarray(image.convert("RGBA"))
      if rgba.shape != (SIZE, SIZE, 4):
        raise ValueError(f"{path}: {name} is {rgba.shape[:2]}, not {SIZE}x{SIZE}.")
      label, split = labels[name]
      splits[split].append((name, composite_on_white(rgba), label))
  for examples in splits.values():
    examples.sort(key=lambda example: example[0])
  return splits


class EmojiGoogle(tfds.core.GeneratorBasedBuilder):
  """Noto colour emoji at 64x64, composited on white, labelled by category."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"`npm pack {PACKAGE}` into the manual dir."

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(SIZE, SIZE, 3), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=CATEGORIES)}),
        supervised_keys=("image", "label"),
        homepage="https://github.com/iamcal/emoji-data",
        description=self.__doc__)

  def _split_generators(self, dl_manager):
    splits = read_tarball(os.path.join(os.fspath(dl_manager.manual_dir), TARBALL))
    return {split: self._generate_examples(examples) for split, examples in splits.items()}

  def _generate_examples(self, examples):
    for name, image, label in examples:
      yield name, {"image": image, "label": label}
