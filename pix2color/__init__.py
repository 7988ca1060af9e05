"""pix2color: GAN-based image colorization with a U-Net on a pretrained encoder.

``from pix2color import Colorizer`` is the Python API for colorizing photos; the heavy modules
(fastai, the models) load only when first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Colorizer", "__version__"]


def __getattr__(name: str):
    if name == "Colorizer":
        from pix2color.inference import Colorizer

        return Colorizer
    raise AttributeError(f"module 'pix2color' has no attribute {name!r}")
