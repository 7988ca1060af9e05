"""Serve a checkpoint over HTTP: a JSON/image API and a web page, with dynamic batching (FastAPI + uvicorn).

``pix2color-serve --checkpoint CKPT`` (or ``python -m pix2color.serve``) starts it;
:mod:`pix2color.commands.serve` parses the flags and checks the safety rules, :mod:`.app` holds the routes,
:mod:`.uploads` reads, decodes and encodes images, :mod:`.batching` gathers concurrent requests into one
forward pass and :mod:`.model` runs it.
"""
