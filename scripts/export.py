"""Export a checkpoint: a release folder to share, or ONNX / TorchScript (see ``pix2color.commands.export``).

python scripts/export.py runs/quickstart/checkpoints/gan/best.pt --release releases/quickstart
python scripts/export.py runs/quickstart/checkpoints/gan/best.pt --format onnx
"""

import sys

from pix2color.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
