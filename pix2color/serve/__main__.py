"""``python -m pix2color.serve``: the same as ``pix2color-serve``."""

import sys

from pix2color.commands.serve import main

if __name__ == "__main__":
    sys.exit(main())
