"""Writes the shipped Omniglot, as ``dataset=omniglot`` serves it (Vinyals split, 28 px, 4 rotations per character),
as one torchvision ``ImageFolder`` tree per split: ``OUT/{train,val,test}/<class>/<drawing>.png``.

Grey PNGs are lossless and 28 px needs no resize, so ``data=dataset`` over this tree reads exactly the pixels the
registered path serves; only the class order differs (ImageFolder sorts the folder names), hence other episodes.

    python -m benchmarks.data.omniglot_image_folder /tmp/omniglot_folder
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from lightning_meta.data.omniglot import load_omniglot


def write(out: Path) -> int:
    written = 0
    for stage, classes in load_omniglot().items():
        for c in range(classes.num_classes):
            folder = out / stage / classes.class_names[c].replace("/", "__")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = classes.get(c, range(classes.num_samples(c))).mul(255).round().byte()
            for i, image in enumerate(pixels):
                Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:02d}.png")
                written += 1
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    print(write(parser.parse_args().out), "images written")
