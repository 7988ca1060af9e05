"""The HTTP API against real uvicorn servers on loopback: good photos, every bad file the robustness suite
knows, oversize uploads, tokens, the Host check and a full queue."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.robustness.conftest import DECODABLE, UNREADABLE, photo
from tests.serve.conftest import TOKEN, Server, png_bytes


def post(server: Server, data: bytes, headers: dict[str, str] | None = None, **params) -> httpx.Response:
    files = {"file": ("photo.png", data, "application/octet-stream")}
    return httpx.post(f"{server.url}/v1/colorize", files=files, params=params, headers=headers, timeout=120)


def decoded(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def assert_one_sentence(response: httpx.Response, status: int, *needles: str) -> str:
    """A JSON error with ``status`` whose detail is one sentence naming every needle, and no path or traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "\n" not in detail, detail
    assert "Traceback" not in detail and "/tmp" not in detail and "object at 0x" not in detail, detail
    for needle in needles:
        assert needle in detail, detail
    return detail


def test_health_and_model_describe_the_checkpoint(open_server: Server) -> None:
    health = httpx.get(f"{open_server.url}/v1/health").json()
    assert health["status"] == "ok" and health["queue"] == 1
    info = httpx.get(f"{open_server.url}/v1/model").json()
    assert (info["encoder"], info["stage"], info["training_size"], info["render_size"]) == (
        "resnet18",
        "pretrain",
        64,
        64,
    )
    assert info["limits"]["max_upload_bytes"] == 2**20 and info["limits"]["max_batch"] == 1


def test_a_photo_comes_back_colorized_at_full_size_as_the_colorizer_makes_it(
    open_server: Server, tiny_checkpoint: Path
) -> None:
    import torch

    from pix2color.data import open_image
    from pix2color.inference import Colorizer

    gray = photo((150, 100), seed=3).convert("L")
    response = post(open_server, png_bytes(gray), saturation=1.5, render_size=96)
    served = decoded(response)
    assert served.format == "PNG" and served.mode == "RGB" and served.size == (150, 100)
    assert response.headers["x-render-size"] == "96" and response.headers["x-batch-size"] == "1"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server runs (OMP_NUM_THREADS=1), so that both sum in the same order
    try:
        colorizer = Colorizer.from_checkpoint(tiny_checkpoint, "cpu", render_size=96, saturation=1.5)
        expected = colorizer.colorize(open_image(io.BytesIO(png_bytes(gray))))
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(np.asarray(served), np.asarray(expected))
    assert np.asarray(served.convert("RGB")).std(axis=-1).mean() > 0  # a gray photo got colour


def test_jpeg_output_drops_alpha(open_server: Server) -> None:
    rgba = photo((40, 30), seed=4).convert("RGBA")
    assert decoded(post(open_server, png_bytes(rgba))).mode == "RGBA"  # PNG keeps the alpha
    out = decoded(post(open_server, png_bytes(rgba), format="jpg"))
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (40, 30))


@pytest.mark.parametrize("kind", list(DECODABLE))
def test_every_decodable_kind_is_colorized_at_its_oriented_size(open_server: Server, tmp_path: Path, kind: str) -> None:
    from pix2color.data import image_size

    path = DECODABLE[kind](tmp_path)
    out = decoded(post(open_server, path.read_bytes()))
    assert out.size == image_size(path)  # EXIF-rotated: stored 48x32, answered 32x48
    if kind in ("palette with transparency", "LA"):
        assert out.mode == "RGBA"


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_every_unreadable_kind_gets_one_sentence_and_the_server_goes_on(
    open_server: Server, tmp_path: Path, kind: str
) -> None:
    path = UNREADABLE[kind](tmp_path)
    response = post(open_server, path.read_bytes())
    if kind == "20000x20000 bomb":
        assert_one_sentence(response, 413, "decompression bomb", "100,000,000")
    elif kind == "zero-byte":
        assert_one_sentence(response, 400, "empty")
    else:
        assert_one_sentence(response, 400, "cannot be read as an image")
    assert decoded(post(open_server, png_bytes(photo(seed=5)))).size == (48, 40)


def test_a_bomb_under_pillows_own_cap_is_refused_from_its_header(open_server: Server) -> None:
    big = Image.new("1", (12_000, 9_000))  # 108 M pixels: over the server's 100 M, under Pillow's 179 M
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    assert_one_sentence(post(open_server, buffer.getvalue()), 413, "12000x9000", "decompression bomb")


def test_an_upload_over_the_cap_is_refused_while_it_streams(open_server: Server) -> None:
    too_big = b"\xff" * (2**20 + 1)
    assert_one_sentence(post(open_server, too_big), 413, "1 MB")

    def chunks():  # no Content-Length: the cap must hold while reading
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        for _ in range(64):
            yield b"\0" * 65536
        yield b"\r\n" + boundary + b"--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    response = httpx.post(f"{open_server.url}/v1/colorize", content=chunks(), headers=headers, timeout=60)
    assert_one_sentence(response, 413, "1 MB")
    assert decoded(post(open_server, png_bytes(photo(seed=6)))).size == (48, 40)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"render_size": 100}, "render_size=100"),
        ({"render_size": 2048}, "render_size=2048"),
        ({"saturation": -1}, "saturation=-1"),
        ({"saturation": "vivid"}, "saturation=vivid"),
        ({"format": "gif"}, "format=gif"),
    ],
)
def test_bad_parameters_get_400_naming_them(open_server: Server, params: dict, needle: str) -> None:
    assert_one_sentence(post(open_server, png_bytes(photo()), **params), 400, needle)


def test_a_body_that_is_not_a_form_gets_415_and_a_form_without_file_400(open_server: Server) -> None:
    raw = httpx.post(
        f"{open_server.url}/v1/colorize", content=png_bytes(photo()), headers={"Content-Type": "image/png"}
    )
    assert_one_sentence(raw, 415, "multipart/form-data")
    no_file = httpx.post(f"{open_server.url}/v1/colorize", files={"photo": ("a.png", png_bytes(photo()))})
    assert_one_sentence(no_file, 400, "'file'")


def test_a_request_for_another_host_name_is_refused_without_a_token(open_server: Server) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not reach the API."""
    response = httpx.get(f"{open_server.url}/v1/model", headers={"Host": "evil.example:8000"})
    assert_one_sentence(response, 400, "localhost")
    assert httpx.get(f"{open_server.url}/v1/health", headers={"Host": "localhost"}).status_code == 200


def test_cors_is_off_by_default(open_server: Server) -> None:
    response = httpx.get(f"{open_server.url}/v1/health", headers={"Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in response.headers


def test_the_token_is_checked_on_every_api_call(token_server: Server) -> None:
    url = token_server.url
    for path in ("/v1/health", "/v1/model"):
        assert_one_sentence(httpx.get(f"{url}{path}"), 401, "no token")
        wrong = httpx.get(f"{url}{path}", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert_one_sentence(wrong, 401, "wrong token")
        assert wrong.headers["www-authenticate"] == "Bearer"
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert_one_sentence(post(token_server, png_bytes(photo())), 401, "no token")
    assert decoded(post(token_server, png_bytes(photo()), headers=good)).size == (48, 40)
    assert httpx.get(f"{url}/v1/model", headers=good | {"Host": "pix2color.example"}).status_code == 200
    assert httpx.get(f"{url}/").status_code == 200  # the page itself is public; its API calls send the token


def test_a_full_queue_answers_503_with_retry_after_and_the_server_keeps_serving(open_server: Server) -> None:
    slow = png_bytes(photo((300, 200), seed=7))  # at render size 512: seconds of work for the tiny model
    first: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: first.append(post(open_server, slow, render_size=512)))
    worker.start()
    try:
        wait_until_in_flight(open_server, 1)
        response = post(open_server, png_bytes(photo()))
        assert_one_sentence(response, 503, "queue is full", "retry in")
        assert int(response.headers["retry-after"]) >= 1
    finally:
        worker.join(120)
    assert decoded(first[0]).size == (300, 200)
    assert decoded(post(open_server, png_bytes(photo()))).size == (48, 40)


def wait_until_in_flight(
    server: Server, count: int, timeout_s: float = 30, headers: dict[str, str] | None = None
) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{server.url}/v1/health", headers=headers).json()["in_flight"] >= count:
            return
        time.sleep(0.02)
    pytest.fail(f"the server never had {count} requests in flight")


def test_the_openapi_docs_load_nothing_from_elsewhere(open_server: Server) -> None:
    """/docs works offline: Swagger UI's script and stylesheet come from this server, not a CDN."""
    page = httpx.get(f"{open_server.url}/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assets = [part.split('"')[0] for part in page.text.split('src="')[1:] + page.text.split('href="')[1:]]
    local = [asset for asset in assets if asset.endswith((".js", ".css"))]
    assert local and all(asset.startswith("/") for asset in local), assets
    for asset in local:
        assert httpx.get(f"{open_server.url}{asset}").status_code == 200, asset
    assert "/v1/colorize" in httpx.get(f"{open_server.url}/openapi.json").json()["paths"]
