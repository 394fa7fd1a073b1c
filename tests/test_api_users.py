"""The account routes of the JSON API, as a client sees them."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import update
from sqlmodel import col

from app import posts, security, users
from app.models import User, UserUpdate
from tests.helpers import (
    PASSWORD,
    TEST_SECRET,
    Account,
    RunningApp,
    create_post,
    delete_account,
    register,
    sign_up,
)


async def test_register_returns_private_user_with_default_picture(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/users",
        json={"username": "alice", "email": "Alice@Example.COM", "password": PASSWORD},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["image_url"] == "/static/img/default-avatar.svg"
    assert "password" not in response.text
    assert "password_hash" not in body


async def test_duplicate_username_is_409_naming_username(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    response = await client.post(
        "/api/users",
        json={"username": "alice", "email": "other@example.com", "password": PASSWORD},
    )
    assert response.status_code == 409
    assert "username" in response.json()["detail"]


async def test_duplicate_email_in_other_case_is_409_naming_email(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    response = await client.post(
        "/api/users",
        json={"username": "alice2", "email": "ALICE@example.com", "password": PASSWORD},
    )
    assert response.status_code == 409
    assert "email" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "bob", "email": "not-an-email", "password": PASSWORD},
        {"username": "bob", "email": "bob@example.com", "password": "short"},
        {"username": "b" * 51, "email": "bob@example.com", "password": PASSWORD},
        {"username": "   ", "email": "bob@example.com", "password": PASSWORD},
        {"username": ["bob"], "email": "bob@example.com", "password": PASSWORD},
        {"email": "bob@example.com", "password": PASSWORD},
    ],
    ids=["bad-email", "short-password", "long-username", "blank-username", "wrong-type", "missing"],
)
async def test_invalid_registration_is_422_and_creates_nothing(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/api/users", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]
    # The name is still free: nothing was written.
    await register(client, "bob")


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/users", content=b'{"username": "bob",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_token_with_right_password_opens_me(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.get("/api/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": alice.id,
        "username": "alice",
        "email": "alice@example.com",
        "email_verified": False,
        "is_admin": False,
        "image_url": "/static/img/default-avatar.svg",
        "image": None,
    }


async def test_login_accepts_email_in_any_case(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/api/users/token", data={"username": "ALICE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
async def test_bad_credentials_get_the_same_401(
    client: httpx.AsyncClient, alice: Account, email: str, password: str
) -> None:
    response = await client.post("/api/users/token", data={"username": email, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect email or password."}


async def test_token_form_without_password_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/users/token", data={"username": "alice@example.com"})
    assert response.status_code == 422


def _token(sub: str, expires_in: timedelta, secret: str = TEST_SECRET) -> str:
    return jwt.encode({"sub": sub, "exp": datetime.now(UTC) + expires_in}, secret, "HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Bearer " + _token("1", timedelta(minutes=5), secret="forged-secret-forged-secret-forged"),
        "Bearer " + _token("1", timedelta(minutes=-5)),
        "Bearer " + _token("not-a-number", timedelta(minutes=5)),
    ],
    ids=["missing", "garbage", "forged", "expired", "bad-subject"],
)
async def test_me_without_a_valid_token_is_401(
    client: httpx.AsyncClient, alice: Account, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/api/users/me", headers=headers)
    assert response.status_code == 401
    assert "Not authenticated" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_public_profile_hides_email(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get(f"/api/users/{alice.id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": alice.id,
        "username": "alice",
        "image_url": "/static/img/default-avatar.svg",
        "image": None,
    }


async def test_missing_user_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/999")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found."}


async def test_user_can_change_own_username_and_email(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.patch(
        f"/api/users/{alice.id}",
        json={"username": "alicia", "email": "Alicia@Example.com", "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert response.status_code == 200
    assert response.json()["username"] == "alicia"
    assert response.json()["email"] == "alicia@example.com"
    me = await client.get("/api/users/me", headers=alice.headers)
    assert me.json()["username"] == "alicia"


async def test_keeping_own_username_is_not_a_conflict(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.patch(
        f"/api/users/{alice.id}", json={"username": "alice"}, headers=alice.headers
    )
    assert response.status_code == 200


async def test_changing_another_user_is_403_and_changes_nothing(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    response = await client.patch(
        f"/api/users/{bob.id}", json={"username": "mallory"}, headers=alice.headers
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "You can only change your own account."}
    assert (await client.get(f"/api/users/{bob.id}")).json()["username"] == "bob"


async def test_patch_user_errors(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    url = f"/api/users/{alice.id}"
    assert (await client.patch(url, json={"username": "x"})).status_code == 401
    assert (
        await client.patch("/api/users/999", json={"username": "x"}, headers=alice.headers)
    ).status_code == 404
    taken = await client.patch(url, json={"username": "bob"}, headers=alice.headers)
    assert taken.status_code == 409
    assert "username" in taken.json()["detail"]
    taken = await client.patch(
        url, json={"email": "bob@example.com", "current_password": PASSWORD}, headers=alice.headers
    )
    assert taken.status_code == 409
    assert "email" in taken.json()["detail"]
    invalid = await client.patch(url, json={"username": "a" * 51}, headers=alice.headers)
    assert invalid.status_code == 422
    assert (await client.get(url)).json()["username"] == "alice"


async def test_deleting_account_deletes_its_posts(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    alice_post = await create_post(client, alice)
    bob_post = await create_post(client, bob)
    response = await delete_account(client, alice)
    assert response.status_code == 204
    assert (await client.get(f"/api/users/{alice.id}")).status_code == 404
    assert (await client.get(f"/api/posts/{alice_post['id']}")).status_code == 404
    assert (await client.get(f"/api/posts/{bob_post['id']}")).status_code == 200
    # The deleted user's token no longer works.
    assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 401


async def test_delete_user_errors(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    assert (await client.delete(f"/api/users/{bob.id}")).status_code == 401
    assert (await client.delete("/api/users/999", headers=alice.headers)).status_code == 404
    forbidden = await client.delete(f"/api/users/{bob.id}", headers=alice.headers)
    assert forbidden.status_code == 403
    assert (await client.get(f"/api/users/{bob.id}")).status_code == 200


async def test_users_posts_lists_only_theirs_newest_first(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for number in range(3):
        await create_post(client, alice, title=f"alice {number}")
    await create_post(client, bob, title="bob 0")
    response = await client.get(f"/api/users/{alice.id}/posts", params={"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert [post["title"] for post in body["posts"]] == ["alice 2", "alice 1"]
    assert (body["limit"], body["has_more"]) == (2, True)
    last = (
        await client.get(
            f"/api/users/{alice.id}/posts", params={"limit": 2, "cursor": body["next_cursor"]}
        )
    ).json()
    assert [post["title"] for post in last["posts"]] == ["alice 0"]
    assert (last["has_more"], last["next_cursor"]) == (False, None)


async def test_users_posts_errors(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await client.get("/api/users/999/posts")).status_code == 404
    for limit in (0, 101, 1000):
        response = await client.get(f"/api/users/{alice.id}/posts", params={"limit": limit})
        assert response.status_code == 422


async def test_old_token_never_opens_an_account_created_after_deletion(
    client: httpx.AsyncClient,
) -> None:
    first = await sign_up(client, "carol")
    await delete_account(client, first)
    again = await register(client, "carol")
    assert again["id"] != first.id
    assert (await client.get("/api/users/me", headers=first.headers)).status_code == 401


async def test_default_picture_url_serves_an_image(
    client: httpx.AsyncClient, alice: Account
) -> None:
    url = (await client.get(f"/api/users/{alice.id}")).json()["image_url"]
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/")


# --- stronger hashes at login ---------------------------------------------------------


async def stored_hash(server: RunningApp, user_id: int) -> str:
    async with server.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.password_hash


async def weakly_hashed(server: RunningApp, account: Account) -> None:
    """Give the account a hash made with weaker parameters than today's."""
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash(PASSWORD)
    async with server.sessionmaker() as session:
        await session.exec(
            update(User).where(col(User.id) == account.id).values(password_hash=weak)
        )
        await session.commit()


async def test_a_login_upgrades_an_old_hash(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    await weakly_hashed(server, alice)
    response = await client.post(
        "/api/users/token", data={"username": alice.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "m=65536" in await stored_hash(server, alice.id)


async def test_a_login_succeeds_when_the_profile_changes_meanwhile(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade of an old hash must not turn a right password into an error
    because the account changed while the password was checked."""
    await weakly_hashed(server, alice)
    checking = security.verify_password

    async def meanwhile_renamed(password_hash: str, password: str) -> bool:
        async with server.sessionmaker() as session:
            user = await session.get(User, alice.id)
            assert user is not None
            await users.update_user(session, user, UserUpdate(username="alicia"))
            await session.commit()
        return await checking(password_hash, password)

    monkeypatch.setattr(security, "verify_password", meanwhile_renamed)
    response = await client.post(
        "/api/users/token", data={"username": alice.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    me = await client.get(
        "/api/users/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["username"] == "alicia"
    assert "m=65536" in await stored_hash(server, alice.id)


async def test_a_post_for_an_account_deleted_meanwhile_is_a_409_not_a_500(
    server: RunningApp, client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    creating = posts.create_post

    async def after_the_account_went(*args: Any, **kwargs: Any) -> Any:
        async with server.sessionmaker() as session:
            user = await session.get(User, alice.id)
            assert user is not None
            await users.delete_user(session, user)
            await session.commit()
        return await creating(*args, **kwargs)

    monkeypatch.setattr(posts, "create_post", after_the_account_went)
    response = await client.post(
        "/api/posts", json={"title": "Late", "content": "Too late"}, headers=alice.headers
    )
    assert response.status_code == 409
    assert "Reload and try again" in response.json()["detail"]
