"""Attachments: several files in one file field, on local disk and on S3 (moto_server)."""

import io

import httpx
import pytest
from PIL import Image

from app.config import Settings
from tests import pictures
from tests.helpers import (
    Account,
    RunningApp,
    create_post,
    csrf_from,
    page_login,
    stored_files,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def server_settings(storage_settings: Settings) -> Settings:
    return storage_settings


async def attach(
    client: httpx.AsyncClient, account: Account, post_id: object, name: str, data: bytes
) -> httpx.Response:
    return await client.post(
        f"/api/posts/{post_id}/attachments",
        files={"file": (name, data, "application/octet-stream")},
        headers=account.headers,
    )


async def test_an_attachment_is_added_listed_downloaded_and_removed(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    added = await attach(client, alice, post["id"], "Résumé «2026».pdf", PDF)
    assert added.status_code == 201
    attachment = added.json()
    assert attachment["filename"] == "Résumé «2026».pdf"
    assert attachment["content_type"] == "application/pdf"
    assert attachment["size"] == len(PDF)
    shown = (await client.get(f"/api/posts/{post['id']}")).json()
    assert shown["attachments"] == [attachment]

    download = await client.get(attachment["url"])
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        'attachment; filename="R_sum_ _2026_.pdf"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20%C2%AB2026%C2%BB.pdf"
    )
    assert len(await stored_files(server.storage)) == 1

    removed = await client.delete(attachment["url"], headers=alice.headers)
    assert removed.status_code == 204
    assert (await client.get(attachment["url"])).status_code == 404
    assert (await client.get(f"/api/posts/{post['id']}")).json()["attachments"] == []
    assert await stored_files(server.storage) == set()


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("page.pdf", b"<html><script>alert(1)</script></html>", 422, "not one we accept"),
        ("empty.pdf", b"", 422, "The file is empty"),
        ("photo.tiff", pictures.tiff(), 422, "not one we accept"),
    ],
    ids=["html-named-pdf", "empty", "tiff"],
)
async def test_a_refused_attachment_says_why_and_leaves_nothing(
    server: RunningApp,
    client: httpx.AsyncClient,
    alice: Account,
    name: str,
    data: bytes,
    status: int,
    message: str,
) -> None:
    post = await create_post(client, alice)
    response = await attach(client, alice, post["id"], name, data)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert (await client.get(f"/api/posts/{post['id']}")).json()["attachments"] == []
    assert await stored_files(server.storage) == set()


async def test_five_attachments_at_most_and_only_the_author_adds_them(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    post = await create_post(client, alice)
    assert (await attach(client, bob, post["id"], "x.pdf", PDF)).status_code == 403
    assert (await attach(client, alice, 99999, "x.pdf", PDF)).status_code == 404
    for number in range(5):
        data = PDF if number % 2 else pictures.png_with_alpha()
        assert (await attach(client, alice, post["id"], f"f{number}", data)).status_code == 201
    sixth = await attach(client, alice, post["id"], "sixth.pdf", PDF)
    assert sixth.status_code == 422
    assert "at most 5 attachments" in sixth.json()["detail"]
    kinds = [
        a["content_type"]
        for a in (await client.get(f"/api/posts/{post['id']}")).json()["attachments"]
    ]
    assert kinds == ["image/png", "application/pdf"] * 2 + ["image/png"]
    assert len(await stored_files(server.storage)) == 5
    deleted = await client.delete(f"/api/posts/{post['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert await stored_files(server.storage) == set()


async def test_attachments_through_the_forms(
    server: RunningApp, browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    form = await browser.get("/posts/new")
    created = await browser.post(
        "/posts/new",
        data={"title": "With files", "content": "See attached", "csrf_token": csrf_from(form.text)},
        files=[
            ("attachments", ("notes.pdf", PDF, "application/pdf")),
            ("attachments", ("chart.png", pictures.png_with_alpha(), "image/png")),
        ],
    )
    assert created.status_code == 303
    post_url = created.headers["location"]
    page = (await browser.get(post_url)).text
    assert "notes.pdf" in page
    assert "chart.png" in page
    assert len(await stored_files(server.storage)) == 2

    edit = await browser.get(f"{post_url}/edit")
    refused = await browser.post(
        f"{post_url}/edit",
        data={"title": "With files", "content": "Kept text", "csrf_token": csrf_from(edit.text)},
        files=[("attachments", ("page.pdf", b"<html></html>", "application/pdf"))],
    )
    assert refused.status_code == 422
    assert "Kept text" in refused.text
    assert 'id="attachments-note">This file is not one we accept.' in refused.text

    post_id = post_url.rsplit("/", 1)[-1]
    (first, _second) = (await browser.get(f"/api/posts/{post_id}")).json()["attachments"]
    removed = await browser.post(
        f"/posts/{post_id}/attachments/{first['id']}/delete",
        data={"csrf_token": csrf_from(edit.text)},
    )
    assert removed.status_code == 303
    page = (await browser.get(post_url)).text
    assert "notes.pdf" not in page
    assert "chart.png" in page
    assert len(await stored_files(server.storage)) == 1


async def test_a_camera_jpeg_with_several_pictures_is_a_jpeg(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    first, second = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    output = io.BytesIO()
    first.save(output, "MPO", save_all=True, append_images=[second])
    post = await create_post(client, alice)
    added = await attach(client, alice, post["id"], "IMG_0001.JPG", output.getvalue())
    assert added.status_code == 201
    assert added.json()["content_type"] == "image/jpeg"


async def test_an_attachment_whose_file_went_meanwhile_is_a_404(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    post = await create_post(client, alice)
    attachment = (await attach(client, alice, post["id"], "notes.pdf", PDF)).json()
    (key,) = await stored_files(server.storage)
    await server.storage.delete(key)
    response = await client.get(attachment["url"])
    assert response.status_code == 404
    assert response.json() == {"detail": "Attachment not found."}


def test_each_file_field_declares_its_policy() -> None:
    from app.images import AVATAR
    from app.models import Post, User
    from app.policies import ATTACHMENTS, COVER, PROFILE_PICTURE, policy_of

    assert policy_of(User, "image") is PROFILE_PICTURE
    assert policy_of(Post, "image") is COVER
    assert policy_of(Post, "attachments") is ATTACHMENTS
    assert PROFILE_PICTURE.with_image_size(512).image == AVATAR.with_size(512)
    assert AVATAR.with_size(512).renditions == (64, 128)
    assert AVATAR.with_size(100).renditions == (64,)
    with pytest.raises(LookupError):
        policy_of(Post, "title")
