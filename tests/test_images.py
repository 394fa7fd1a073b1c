"""Profile pictures and cover images, from upload to the stored file a browser gets."""

import asyncio
import dataclasses
import io
import re
import threading
from collections.abc import Callable

import httpx
import pytest
from fastapi import UploadFile
from PIL import Image

from app.config import Settings
from app.errors import UploadRejected
from app.images import ImagePreset
from app.models import User
from app.pictures import regenerate_renditions
from app.policies import PROFILE_PICTURE
from app.uploads import accept_upload
from app.workers import WAITING_PER_USER, ImagesBusy, ImageWorkers
from tests import pictures
from tests.helpers import (
    Account,
    RunningApp,
    create_post,
    csrf_from,
    delete_account,
    page_login,
    running,
    sign_up,
    stored_files,
)

KEY = re.compile(r"(avatars|posts)/[A-Za-z0-9_-]+\.webp")


async def stored_keys(server: RunningApp) -> set[str]:
    """The files stored, each counted once with its renditions."""
    return await stored_files(server.storage)


async def upload(
    client: httpx.AsyncClient, url: str, account: Account, data: bytes, filename: str = "upload.jpg"
) -> httpx.Response:
    # The declared type is deliberately always image/jpeg: only the bytes count.
    files = {"file": (filename, data, "image/jpeg")}
    return await client.patch(url, files=files, headers=account.headers)


async def stored_image(client: httpx.AsyncClient, response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    url = response.json()["image_url"]
    assert KEY.search(url), url
    served = await client.get(url)
    assert served.status_code == 200
    image = Image.open(io.BytesIO(served.content))
    image.load()
    return image


def assert_clean(image: Image.Image) -> None:
    assert image.format == "WEBP"
    assert image.mode in ("RGB", "RGBA")
    assert len(image.getexif()) == 0
    assert "exif" not in image.info
    assert "xmp" not in image.info
    assert getattr(image, "n_frames", 1) == 1


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The channels of one pixel of an RGB or RGBA image."""
    value = image.getpixel(xy)
    assert isinstance(value, tuple), value
    return value


def close(pixel: tuple[int, ...], colour: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


async def set_avatar(client: httpx.AsyncClient, account: Account, data: bytes) -> Image.Image:
    response = await upload(client, f"/api/users/{account.id}/picture", account, data)
    image = await stored_image(client, response)
    assert_clean(image)
    return image


async def set_cover(client: httpx.AsyncClient, account: Account, data: bytes) -> Image.Image:
    post = await create_post(client, account)
    response = await upload(client, f"/api/posts/{post['id']}/image", account, data)
    image = await stored_image(client, response)
    assert_clean(image)
    return image


# --- accepted ------------------------------------------------------------------------


async def test_sideways_phone_photo_is_stored_upright_without_exif_or_gps(
    client: httpx.AsyncClient, alice: Account
) -> None:
    avatar = await set_avatar(client, alice, pictures.jpeg_rotated_with_gps())
    assert avatar.size == (256, 256)
    assert close(pixel(avatar, (128, 20)), pictures.RED)
    assert close(pixel(avatar, (128, 236)), pictures.BLUE)
    cover = await set_cover(client, alice, pictures.jpeg_rotated_with_gps())
    assert cover.size == (400, 600)
    assert close(pixel(cover, (200, 50)), pictures.RED)


async def test_cmyk_jpeg_is_converted_to_rgb(client: httpx.AsyncClient, alice: Account) -> None:
    avatar = await set_avatar(client, alice, pictures.cmyk_jpeg())
    assert avatar.mode == "RGB"
    red, green, blue = pixel(avatar, (128, 128))[:3]
    assert red > 150
    assert green < 100
    assert blue < 100


async def test_progressive_jpeg_is_accepted(client: httpx.AsyncClient, alice: Account) -> None:
    cover = await set_cover(client, alice, pictures.progressive_jpeg())
    assert cover.size == (300, 200)


async def test_png_alpha_is_kept(client: httpx.AsyncClient, alice: Account) -> None:
    cover = await set_cover(client, alice, pictures.png_with_alpha())
    assert cover.mode == "RGBA"
    assert cover.size == (40, 40)
    assert pixel(cover, (20, 5))[3] == 0
    assert close(pixel(cover, (20, 35)), (*pictures.GREEN, 255))


async def test_16_bit_png_keeps_its_tones(client: httpx.AsyncClient, alice: Account) -> None:
    cover = await set_cover(client, alice, pictures.png_16_bit())
    assert cover.mode == "RGB"
    assert close(pixel(cover, (25, 25)), (128, 128, 128), tolerance=10)


async def test_palette_png_transparency_is_kept(client: httpx.AsyncClient, alice: Account) -> None:
    cover = await set_cover(client, alice, pictures.palette_png_with_transparency())
    assert cover.mode == "RGBA"
    assert pixel(cover, (15, 5))[3] == 0
    assert close(pixel(cover, (15, 25)), (*pictures.GREEN, 255))


async def test_animated_gif_keeps_its_first_frame(
    client: httpx.AsyncClient, alice: Account
) -> None:
    avatar = await set_avatar(client, alice, pictures.animated_gif())
    assert close(pixel(avatar, (128, 128)), pictures.RED)


async def test_webp_is_accepted(client: httpx.AsyncClient, alice: Account) -> None:
    cover = await set_cover(client, alice, pictures.webp())
    assert cover.size == (120, 80)


async def test_pictures_below_the_fields_minimum_are_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    for path in (f"/api/users/{alice.id}/picture", f"/api/posts/{post['id']}/image"):
        refused = await upload(client, path, alice, pictures.one_pixel(), "dot.png")
        assert refused.status_code == 422
        assert refused.json()["detail"] == (
            "The image is too small (1x1 pixels). It must be at least 16x16 pixels."
        )
    # The smallest accepted picture is still made into a full-size square.
    avatar = await set_avatar(client, alice, pictures.jpeg(16, 16))
    assert avatar.size == (256, 256)


async def test_large_photo_is_scaled_down(client: httpx.AsyncClient, alice: Account) -> None:
    photo = pictures.photo_6000x4000()
    cover = await set_cover(client, alice, photo)
    assert cover.size == (1600, 1067)
    assert close(pixel(cover, (100, 500)), pictures.RED)
    assert close(pixel(cover, (1500, 500)), pictures.BLUE)
    avatar = await set_avatar(client, alice, photo)
    assert avatar.size == (256, 256)


async def test_avatar_size_follows_the_setting(settings: Settings) -> None:
    small = settings.model_copy(update={"avatar_size": 64})
    async with running(small) as live, live.client() as client:
        account = await sign_up(client, "alice")
        avatar = await set_avatar(client, account, pictures.jpeg(300, 200))
    assert avatar.size == (64, 64)


@pytest.mark.parametrize("filename", ["../../etc/passwd", "ü.jpg", "C:\\photos\\me.jpg"])
async def test_the_filename_never_reaches_the_key(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, filename: str
) -> None:
    url = f"/api/users/{alice.id}/picture"
    response = await upload(client, url, alice, pictures.jpeg(), filename=filename)
    assert response.status_code == 200
    (key,) = await stored_keys(server)
    assert re.fullmatch(r"avatars/[A-Za-z0-9_-]{24}\.webp", key)
    assert key in response.json()["image_url"]


# --- refused -------------------------------------------------------------------------

REFUSED: list[tuple[str, Callable[[], bytes], int, str]] = [
    ("zero-bytes", lambda: b"", 422, "The file is empty"),
    (
        "text-renamed-jpg",
        lambda: b"just some text, not a photo\n" * 10,
        422,
        "not an image we accept",
    ),
    ("svg", pictures.svg, 422, "not an image we accept"),
    ("truncated-jpeg", pictures.truncated_jpeg, 422, "damaged or incomplete"),
    ("png-bomb", pictures.png_bomb, 422, "The limit is 40 million pixels"),
    ("png-over-40-megapixels", lambda: pictures.png_bomb(8000, 6000), 422, "8000x6000"),
    ("webp-over-the-memory-budget", pictures.wide_webp, 422, "16383x2441 pixels"),
    ("tiff", pictures.tiff, 422, "not an image we accept"),
    ("bmp", pictures.bmp, 422, "not an image we accept"),
]


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
@pytest.mark.parametrize("target", ["picture", "cover"])
async def test_refused_uploads_explain_why_and_leave_nothing(
    server: RunningApp,
    client: httpx.AsyncClient,
    alice: Account,
    target: str,
    data: Callable[[], bytes],
    status: int,
    message: str,
) -> None:
    post = await create_post(client, alice)
    url = (
        f"/api/users/{alice.id}/picture"
        if target == "picture"
        else f"/api/posts/{post['id']}/image"
    )
    response = await upload(client, url, alice, data(), filename="photo.jpg")
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert await stored_keys(server) == set()
    me = (await client.get("/api/users/me", headers=alice.headers)).json()
    assert me["image_url"] == "/static/img/default-avatar.svg"
    assert (await client.get(f"/api/posts/{post['id']}")).json() == post


async def test_upload_over_the_limit_is_413(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_upload_bytes": 300_000})
    async with running(limited) as live, live.client() as client:
        alice = await sign_up(client, "alice")
        url = f"/api/users/{alice.id}/picture"
        # Just over the limit: read in chunks and refused once past it.
        response = await upload(client, url, alice, b"\xff" * 300_001)
        assert response.status_code == 413
        assert response.json() == {"detail": "The file is too large. The limit is 293 KB."}
        # A declared Content-Length far over the limit is refused before the body is read.
        declared = await upload(client, url, alice, b"\xff" * 2_000_000)
        assert declared.status_code == 413
        assert "too large" in declared.json()["detail"]
        assert {stored async for stored in live.app.state.storage.scan()} == set()


async def test_picture_routes_check_row_then_owner(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    data = pictures.jpeg()
    assert (await upload(client, "/api/users/999/picture", alice, data)).status_code == 404
    assert (await upload(client, f"/api/users/{bob.id}/picture", alice, data)).status_code == 403
    post = await create_post(client, bob)
    url = f"/api/posts/{post['id']}/image"
    assert (await upload(client, url, alice, data)).status_code == 403
    assert (await upload(client, "/api/posts/999/image", alice, data)).status_code == 404
    anonymous = await client.patch(url, files={"file": ("a.jpg", data, "image/jpeg")})
    assert anonymous.status_code == 401
    missing_file = await client.patch(url, headers=bob.headers)
    assert missing_file.status_code == 422


# --- through the forms ------------------------------------------------------------------


def shows(html: str, key: str, size: str) -> bool:
    """Whether the page has an <img> of this stored object, with these size attributes.
    (Local media URLs are /media/<key>; S3 ones are presigned and differ each time.)"""
    wanted = " ".join(size.split())
    return any(
        re.search(rf'src="[^"]*/{re.escape(key)}[^"]*"', tag) and wanted in " ".join(tag.split())
        for tag in re.findall(r"<img[^>]+>", html)
    )


async def account_form_upload(browser: httpx.AsyncClient, data: bytes) -> httpx.Response:
    page = await browser.get("/account")
    username = re.search(r'name="username" type="text" value="([^"]*)"', page.text)
    email = re.search(r'name="email" type="email" value="([^"]*)"', page.text)
    assert username
    assert email
    return await browser.post(
        "/account",
        data={"csrf_token": csrf_from(page.text), "username": username[1], "email": email[1]},
        files={"picture": ("me.jpg", data, "image/jpeg")},
    )


async def test_profile_picture_through_the_account_form(
    server: RunningApp, browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    uploaded = await account_form_upload(browser, pictures.jpeg(400, 300))
    assert uploaded.status_code == 303
    page = (await browser.get("/account")).text
    (first,) = await stored_keys(server)
    assert shows(page, first, 'width="96" height="96"')
    assert "Remove picture" in page

    replaced = await account_form_upload(browser, pictures.webp())
    assert replaced.status_code == 303
    (second,) = await stored_keys(server)
    assert second != first
    home = (await browser.get("/")).text
    assert shows(home, second, 'width="28" height="28"')

    page = (await browser.get("/account")).text
    removed = await browser.post("/account/picture/delete", data={"csrf_token": csrf_from(page)})
    assert removed.status_code == 303
    page = (await browser.get("/account")).text
    assert "Your profile picture is removed." in page
    assert 'src="/static/img/default-avatar.svg"' in page
    assert await stored_keys(server) == set()


async def test_refused_picture_re_renders_the_account_form(
    server: RunningApp, browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    response = await account_form_upload(browser, pictures.svg())
    assert response.status_code == 422
    assert 'id="picture-note">This file is not an image we accept.' in response.text
    assert await stored_keys(server) == set()


async def test_cover_image_through_the_post_forms(
    server: RunningApp, browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    form = await browser.get("/posts/new")
    assert 'enctype="multipart/form-data"' in form.text
    created = await browser.post(
        "/posts/new",
        data={"csrf_token": csrf_from(form.text), "title": "With a cover", "content": "Text"},
        files={"image": ("cover.jpg", pictures.jpeg(800, 400), "image/jpeg")},
    )
    assert created.status_code == 303
    post_url = created.headers["location"]
    (cover,) = await stored_keys(server)
    page = (await browser.get(post_url)).text
    assert shows(page, cover, 'width="800"\n        height="400"')

    edit = await browser.get(f"{post_url}/edit")
    removed = await browser.post(
        f"{post_url}/edit",
        data={
            "csrf_token": csrf_from(edit.text),
            "title": "With a cover",
            "content": "Text",
            "remove_image": "true",
        },
        files={"image": ("", b"", "application/octet-stream")},
    )
    assert removed.status_code == 303
    assert cover not in (await browser.get(post_url)).text
    assert await stored_keys(server) == set()


async def test_new_post_with_a_bad_image_keeps_the_text_and_saves_nothing(
    server: RunningApp, browser: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    form = await browser.get("/posts/new")
    response = await browser.post(
        "/posts/new",
        data={"csrf_token": csrf_from(form.text), "title": "Kept", "content": "Kept text"},
        files={"image": ("cover.jpg", pictures.truncated_jpeg(), "image/jpeg")},
    )
    assert response.status_code == 422
    assert 'id="image-note">The image could not be read' in response.text
    assert 'value="Kept"' in response.text
    assert (await client.get("/api/posts")).json()["posts"] == []
    assert await stored_keys(server) == set()


# --- a fair queue ---------------------------------------------------------------------


async def test_one_users_uploads_take_one_place_in_the_queue() -> None:
    """Ten uploads from one user do not make everyone else wait for ten images."""
    gate = threading.Event()
    order: list[str] = []

    def slow(name: str) -> None:
        gate.wait(timeout=10)
        order.append(name)

    workers = ImageWorkers(max_upload_bytes=1000, workers=1)
    try:
        uploads = []
        for name, user in [("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2)]:
            uploads.append(asyncio.create_task(workers.call(slow, name, user=user)))
            await asyncio.sleep(0.05)  # each in the queue (or waiting) before the next
        gate.set()
        await asyncio.gather(*uploads)
    finally:
        workers.close()
    assert order == ["a1", "b1", "a2", "a3"]


async def test_one_user_cannot_queue_more_than_a_few_uploads() -> None:
    gate = threading.Event()

    def slow() -> None:
        gate.wait(timeout=10)

    workers = ImageWorkers(max_upload_bytes=1000, workers=1)
    try:
        waiting = [
            asyncio.create_task(workers.call(slow, user=1)) for n in range(1 + WAITING_PER_USER)
        ]
        await asyncio.sleep(0.05)
        with pytest.raises(ImagesBusy):
            await workers.call(slow, user=1)
        # Someone else still gets in line.
        other = asyncio.create_task(workers.call(slow, user=2))
        gate.set()
        await asyncio.gather(*waiting, other)
    finally:
        workers.close()
    assert workers.users == {}
    assert workers.waiting == {}


async def test_a_full_queue_is_a_503_with_retry_after(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    server.app.state.images.max_queued = 0
    url = f"/api/users/{alice.id}/picture"
    response = await upload(client, url, alice, pictures.jpeg())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "try again in a moment" in response.json()["detail"]
    assert await stored_keys(server) == set()


# --- renditions ------------------------------------------------------------------------


async def test_renditions_are_made_served_and_deleted_with_their_picture(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    picture = await upload(
        client, f"/api/users/{alice.id}/picture", alice, pictures.jpeg(600, 400), "me.jpg"
    )
    post = await create_post(client, alice)
    cover = await upload(
        client, f"/api/posts/{post['id']}/image", alice, pictures.jpeg(2000, 1000), "wide.jpg"
    )
    small = await upload(
        client,
        f"/api/posts/{(await create_post(client, alice))['id']}/image",
        alice,
        pictures.jpeg(600, 300),
        "small.jpg",
    )
    expected = [
        (picture.json()["image"], [(64, 64), (128, 128), (256, 256)]),
        (cover.json()["image"], [(480, 240), (960, 480), (1600, 800)]),
        # Never enlarged: only the copy narrower than the picture itself.
        (small.json()["image"], [(480, 240), (600, 300)]),
    ]
    for image, sizes in expected:
        copies = [*image["renditions"], image]
        assert [(copy["width"], copy["height"]) for copy in copies] == sizes
        assert image["content_type"] == "image/webp"
        for copy in copies:
            served = await client.get(copy["url"])
            assert served.status_code == 200
            assert Image.open(io.BytesIO(served.content)).size == (copy["width"], copy["height"])
    assert cover.json()["image_url"] == cover.json()["image"]["url"]
    total = sum(len(sizes) for _image, sizes in expected)
    assert len({stored.key async for stored in server.storage.scan()}) == total

    page = (await client.get(f"/posts/{post['id']}")).text
    assert " 480w, " in page
    assert 'sizes="(max-width: 760px) 100vw, 720px"' in page
    assert 'loading="lazy"' in (await client.get("/")).text
    await delete_account(client, alice)
    assert [stored async for stored in server.storage.scan()] == []


async def test_regenerate_makes_the_renditions_todays_settings_ask_for(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    picture = await upload(
        client, f"/api/users/{alice.id}/picture", alice, pictures.jpeg(600, 400), "me.jpg"
    )
    assert [r["width"] for r in picture.json()["image"]["renditions"]] == [64, 128]
    before = {stored.key async for stored in server.storage.scan()}

    # The sizes change: 100 and 200 pixels instead of 64 and 128.
    preset = ImagePreset(size=256, crop=True, renditions=(100, 200))
    changed = dataclasses.replace(PROFILE_PICTURE, image=preset)
    report = await regenerate_renditions(server.sessionmaker, [(User, changed)], progress=print)
    assert (report.checked, report.rebuilt) == (1, 1)
    image = (await client.get("/api/users/me", headers=alice.headers)).json()["image"]
    assert [(r["width"], r["height"]) for r in image["renditions"]] == [(100, 100), (200, 200)]
    for rendition in image["renditions"]:
        served = await client.get(rendition["url"])
        assert Image.open(io.BytesIO(served.content)).size == (rendition["width"],) * 2
    after = {stored.key async for stored in server.storage.scan()}
    assert len(after) == 3
    assert len(after & before) == 1  # the picture itself; the old copies are gone

    again = await regenerate_renditions(server.sessionmaker, [(User, changed)], progress=print)
    assert (again.checked, again.rebuilt) == (1, 0)


async def test_a_picture_field_takes_only_the_kinds_its_policy_names(server: RunningApp) -> None:
    png_only = dataclasses.replace(PROFILE_PICTURE, accepts=("image/png",))
    workers = server.app.state.images
    async with server.sessionmaker() as session:
        accepted = await accept_upload(
            session, workers, as_upload(pictures.png_with_alpha()), png_only
        )
        assert accepted.image is not None
        assert accepted.image.source_type == "image/png"
        with pytest.raises(UploadRejected) as refused:
            await accept_upload(session, workers, as_upload(pictures.jpeg()), png_only)
    assert refused.value.detail == "This file is not one we accept. Upload a PNG file."


def as_upload(data: bytes) -> UploadFile:
    return UploadFile(io.BytesIO(data), filename="upload")
