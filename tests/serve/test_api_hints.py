"""Colour hints over HTTP: the ``hints`` form field of POST /v1/colorize on real servers, the "token" one serving
a model that takes hints (``hinted_checkpoint``), the "open" one a model without them and without the spread."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from tests.robustness.conftest import photo
from tests.serve.conftest import TOKEN, Server, png_bytes
from tests.serve.test_api import assert_one_sentence, decoded, wait_until_in_flight

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RED, BLUE = "#c02020", "#2040c0"


def post(server: Server, image: Image.Image, hints: str | bytes | None, as_file: bool = False, **params):
    """POST the photo as PNG with ``hints`` as the form's text field (or as a file), with the test token."""
    files = {"file": ("photo.png", png_bytes(image), "application/octet-stream")}
    data = {}
    if as_file:
        files["hints"] = ("hints.json", hints, "application/json")
    elif hints is not None:
        data["hints"] = hints
    return httpx.post(f"{server.url}/v1/colorize", files=files, data=data, params=params, headers=AUTH, timeout=120)


def ab_near(image: Image.Image, x: int, y: int, radius: int = 1) -> np.ndarray:
    """The mean Lab chroma (a, b) of ``image`` in the (2 radius + 1)² square around (x, y)."""
    rgb = np.asarray(image.convert("RGB"))[y - radius : y + radius + 1, x - radius : x + radius + 1]
    return rgb2lab(rgb).reshape(-1, 3)[:, 1:].mean(axis=0)


def hex_ab(color: str) -> np.ndarray:
    return rgb2lab(np.array([[[int(color[i : i + 2], 16) for i in (1, 3, 5)]]], dtype=np.uint8))[0, 0, 1:]


def moved_toward(hinted: Image.Image, automatic: Image.Image, x: int, y: int, color: str) -> bool:
    """Whether the chroma near (x, y) is nearer to ``color``'s with the hint than without, by 10 Lab units."""
    target = hex_ab(color)
    before = np.linalg.norm(ab_near(automatic, x, y) - target)
    return np.linalg.norm(ab_near(hinted, x, y) - target) < before - 10


def two_hints(x1: int, y1: int, x2: int, y2: int) -> str:
    return json.dumps([{"x": x1, "y": y1, "color": RED, "size": 12}, {"x": x2, "y": y2, "color": BLUE, "size": 12}])


def test_the_model_says_whether_it_takes_hints(open_server: Server, token_server: Server) -> None:
    assert httpx.get(f"{open_server.url}/v1/model").json()["hints"] is False
    info = httpx.get(f"{token_server.url}/v1/model", headers=AUTH).json()
    assert info["hints"] is True and info["limits"]["max_hints"] == 256


def test_hints_move_the_colors_at_their_points_as_the_colorizer_does(
    token_server: Server, hinted_checkpoint: Path
) -> None:
    import torch

    from pix2color.hint_points import parse_hints
    from pix2color.inference import Colorizer

    gray = photo((150, 100), seed=8).convert("L")
    hints = two_hints(30, 40, 120, 70)
    served = decoded(post(token_server, gray, hints))
    automatic = decoded(post(token_server, gray, None))
    assert served.size == (150, 100)
    assert moved_toward(served, automatic, 30, 40, RED) and moved_toward(served, automatic, 120, 70, BLUE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server runs (OMP_NUM_THREADS=1), so that both sum in the same order
    try:
        colorizer = Colorizer.from_checkpoint(hinted_checkpoint, "cpu")
        expected = colorizer.colorize(Image.open(io.BytesIO(png_bytes(gray))), hints=parse_hints(json.loads(hints), ""))
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(np.asarray(served), np.asarray(expected))
    as_file = decoded(post(token_server, gray, hints.encode(), as_file=True))  # curl -F hints=@hints.json
    assert np.array_equal(np.asarray(as_file), np.asarray(served))


def hint(**fields) -> dict:
    return {"x": 10, "y": 10, "color": RED} | fields


@pytest.mark.parametrize(
    ("hints", "needle"),
    [
        ("[{'x': 1}]", "the form field 'hints' is not valid JSON (Expecting property name"),
        ("[" * 30_000 + "]" * 30_000, "the form field 'hints' is not UTF-8 JSON of a readable size"),
        ("[" + "1" * 5000 + "]", "the form field 'hints' is not UTF-8 JSON of a readable size"),
        ('{"x": 10, "y": 10, "color": "#c02020"}', "the form field 'hints': hints must be a JSON list of at most 256"),
        (json.dumps([hint()] * 257), "a JSON list of at most 256 objects"),
        (json.dumps([hint(), {"x": 1, "color": RED}]), "the form field 'hints': hint 2 must be an object with x, y"),
        (json.dumps([hint(color="red")]), "hint 1: color='red' is not an RGB hex colour like '#b03a2e'"),
        (json.dumps([hint(lab=[1, 2])]), "either color or lab"),
        (json.dumps([hint(size=1e6)]), "hint 1: size=1000000.0 must be above 0 and at most 100000 pixels"),
        (json.dumps([hint(size=0)]), "hint 1: size=0 must be above 0"),
        (json.dumps([hint(x="1")]), "x, y and size must be numbers"),
        ('[{"x": NaN, "y": 1, "color": "#c02020"}]', "x, y and size must be finite numbers"),
        ('[{"x": 1' + "0" * 400 + ', "y": 1, "color": "#c02020"}]', "x, y and size must be finite numbers"),
        (json.dumps([hint(), hint(x=150)]), "hint 2 at x=150, y=10 lies outside the 150x100 photo"),
        (json.dumps([hint(y=-1)]), "hint 1 at x=10, y=-1 lies outside the 150x100 photo"),
    ],
)
def test_bad_hints_get_400_naming_the_field_and_the_hint(token_server: Server, hints: str, needle: str) -> None:
    assert_one_sentence(post(token_server, photo((150, 100)), hints), 400, needle)


def test_hints_over_the_size_cap_are_refused_as_text_or_file(token_server: Server) -> None:
    too_long = json.dumps([hint()] * 256 + [" " * 65_536])
    assert_one_sentence(post(token_server, photo(), too_long), 400, "the form cannot be read", "64 KB", "'hints'")
    as_file = post(token_server, photo(), too_long.encode(), as_file=True)
    assert_one_sentence(as_file, 413, "'hints' field is larger than this server's limit of 64 KB")
    assert decoded(post(token_server, photo(), json.dumps([hint()]))).size == (48, 40)


def test_a_model_without_hints_refuses_them_in_one_sentence(open_server: Server) -> None:
    response = post(open_server, photo(), json.dumps([hint()]))
    assert_one_sentence(response, 400, "this server's model takes no colour hints", "--no-hint-spread", "'hints'")
    assert decoded(post(open_server, photo(), "[]")).size == (48, 40)  # no hints at all is fine


def test_photos_batched_together_keep_their_own_hints(token_server: Server) -> None:
    """Four requests queued behind a slow one go through the model as one batch; each keeps its own hints (the
    second photo has the first one's colours at swapped places)."""
    wide, tall = photo((96, 64), seed=20).convert("L"), photo((64, 96), seed=21).convert("L")
    requests = [(wide, two_hints(20, 20, 70, 40)), (wide, None), (tall, two_hints(40, 70, 20, 20)), (tall, None)]
    answers: dict[int, httpx.Response] = {}

    def send(index: int) -> None:
        answers[index] = post(token_server, *requests[index])

    blocker = threading.Thread(
        target=lambda: answers.update(slow=post(token_server, photo((300, 200)), None, render_size=384))
    )
    blocker.start()
    try:
        wait_until_in_flight(token_server, 1, headers=AUTH)
        workers = [threading.Thread(target=send, args=(index,)) for index in range(len(requests))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
    finally:
        blocker.join(120)
    assert decoded(answers["slow"]).size == (300, 200)
    assert [answers[index].headers["x-batch-size"] for index in range(4)] == ["4"] * 4
    wide_hinted, wide_automatic, tall_hinted, tall_automatic = (decoded(answers[index]) for index in range(4))
    assert moved_toward(wide_hinted, wide_automatic, 20, 20, RED)
    assert moved_toward(wide_hinted, wide_automatic, 70, 40, BLUE)
    assert moved_toward(tall_hinted, tall_automatic, 40, 70, RED)
    assert moved_toward(tall_hinted, tall_automatic, 20, 20, BLUE)
