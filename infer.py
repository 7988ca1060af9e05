"""Colorize photos with a trained checkpoint: python infer.py PHOTOS... --checkpoint CKPT (see --help)."""

from pix2color.commands.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
