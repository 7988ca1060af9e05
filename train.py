"""Train a pix2color model: ``python train.py --config configs/quickstart.yaml --data DIR``."""

import sys

from pix2color.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
