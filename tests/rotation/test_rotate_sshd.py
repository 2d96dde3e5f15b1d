"""rotate() against real OpenSSH bastions (StrictModes yes) and a real keyring."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.waiting import wait_until_async
from tests.rotation.conftest import RotationWorld
from tests.rotation.helpers import key_accepted, openssh_login_works, write_identity
from tunnel_tui.core import keys
from tunnel_tui.core.authorized_keys_file import find_keys, invalid_lines, split_lines
from tunnel_tui.core.errors import NotFoundError
from tunnel_tui.core.rotation_record import ROTATION_STEPS
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.rotation import RotationError, rotate

pytestmark = pytest.mark.timeout(90)


async def _run(world: RotationWorld, name: str, **kwargs: Any) -> list[StepResult]:
    return [
        row async for row in rotate(world.catalog, name, known_hosts=world.known_hosts, **kwargs)
    ]


def _rotating(world: RotationWorld, seen: list[StepResult], **kwargs: Any) -> asyncio.Task[None]:
    """Rotate "prod" in a task that appends each row to `seen` as it comes."""

    async def consume() -> None:
        async for row in rotate(world.catalog, "prod", known_hosts=world.known_hosts, **kwargs):
            seen.append(row)

    return asyncio.create_task(consume())


def _final(rows: list[StepResult]) -> list[tuple[str, str]]:
    return [(r.step, r.status.value) for r in rows if r.status is not StepStatus.RUNNING]


def _identity(world: RotationWorld, key_id: str, tmp_path: Path, name: str) -> Path:
    return write_identity(tmp_path, world.catalog.private_key(key_id).reveal(), name)


async def _row_shown(
    seen: list[StepResult], task: asyncio.Task[None], step: str, text: str
) -> StepResult:
    """The first row of `step` whose detail holds `text`, once the rotation shows it."""

    def found() -> StepResult | None:
        rows = [r for r in seen if r.step == step and text in r.detail]
        assert rows or not task.done(), [(r.step, r.status, r.detail) for r in seen]
        return rows[0] if rows else None

    row = await wait_until_async(
        found, 40, lambda: f"a {step} row with {text!r}: {[r.detail for r in seen]}"
    )
    assert row is not None
    return row


async def test_rotation_old_rejected_new_accepted_other_lines_intact(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    other = keys.generate().public_line
    server.authorize("# shared bastion, keys below")
    server.authorize(other + " alice@laptop", 'restrict,port-forwarding,permitopen="db:5432"')
    old = world.add("prod", server, options="restrict,port-forwarding")
    server.authorize(keys.generate().public_line + " bob")
    before = server.authorized_keys_path.read_bytes().decode()
    old_identity = _identity(world, old.id, tmp_path, "old")

    rows = await _run(world, "prod")

    assert _final(rows) == [(step, "ok") for step in ROTATION_STEPS]
    new_id = world.catalog.get("prod").key_id
    assert new_id != old.id
    new = world.catalog.key(new_id)
    with pytest.raises(NotFoundError):
        world.catalog.key(old.id)  # the old private key is gone from the store too
    assert not openssh_login_works(server, old_identity)
    assert openssh_login_works(server, _identity(world, new_id, tmp_path, "new"))

    after = server.authorized_keys_path.read_bytes().decode()
    assert invalid_lines(after) == []
    kept = [line for line in split_lines(before) if old.public_key.split()[1] not in line]
    assert split_lines(after)[: len(kept)] == kept  # every other line byte-identical
    (line,) = find_keys(after, new.public_key)
    assert line.options == "restrict,port-forwarding"  # the old line's options kept
    assert "connections touched: prod" in rows[-1].detail
    switch = next(r for r in rows if r.step == "switch")
    assert switch.detail.startswith(f"prod now uses {new.name};")
    assert world.catalog.rotations()[old.id]["step"] == "done"


async def test_shared_key_rotates_once_for_all_connections(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    first, second = sshd_factory(strict_modes=True), sshd_factory(strict_modes=True)
    old = world.add("prod", first)
    world.add("replica", first, reuse=old.id, db_port=5433)  # same bastion: edited once
    world.add("staging", second, reuse=old.id, db_port=5434)
    old_identity = _identity(world, old.id, tmp_path, "old")

    rows = await _run(world, "replica")

    assert _final(rows)[-1] == ("cleanup", "ok")
    ids = {world.catalog.get(n).key_id for n in ("prod", "replica", "staging")}
    assert len(ids) == 1 and old.id not in ids
    new_identity = _identity(world, ids.pop(), tmp_path, "new")
    for server in (first, second):
        assert not openssh_login_works(server, old_identity)
        assert openssh_login_works(server, new_identity)
        assert len(split_lines(server.authorized_keys_path.read_text())) == 1
    assert "prod, replica, staging" in rows[-1].detail
    switch = next(r for r in rows if r.step == "switch")
    assert switch.detail.startswith("prod, replica, staging now use ")


async def test_manual_install_waits_until_the_key_is_added(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    old_identity = _identity(world, old.id, tmp_path, "old")
    seen: list[StepResult] = []

    task = _rotating(world, seen, manual=True, wait_seconds=30, poll_interval=0.2)
    try:
        await wait_until_async(
            lambda: any(r.status is StepStatus.RUNNING and "s left" in r.detail for r in seen),
            30,
            "progress with the time left",
        )
        shown = [r for r in seen if r.step == "install" and "add this line" in r.detail]
        where, line = shown[0].detail.split(": ", 1)
        # Restricted like the old key's connections need (what `key show --restricted` gives).
        assert where == (
            f"add this line to ~{server.user}/.ssh/authorized_keys on 127.0.0.1:{server.port}"
        )
        assert line.startswith(
            'restrict,port-forwarding,permitopen="127.0.0.1:5432",command="/bin/false" ssh-ed25519 '
        )
        assert "tunnel-tui:" in line
        assert shown[0].hint is not None
        assert shown[0].hint.startswith("the line allows only tunnels to 127.0.0.1:5432; ")
        assert "tunnel-tui key show --key" in shown[0].hint and "30 s" in shown[0].hint
        assert openssh_login_works(server, old_identity)  # nothing changed meanwhile
        with pytest.raises(RotationError, match="another key rotation is running"):
            await _run(world, "prod")
        server.authorize(line)  # what the person does on the bastion
        # The new line is restricted too, so rotation cannot edit the file through it:
        # it asks for the old line to go and waits until the old key is rejected.
        ask = await _row_shown(seen, task, "remove-old", "remove the line of this key")
        assert ask.detail.endswith(old.public_key)
        assert openssh_login_works(server, old_identity)
        server.deauthorize(old.public_key)
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
    assert _final(seen) == [(step, "ok") for step in ROTATION_STEPS]
    assert "manual" in [r for r in seen if r.step == "install"][-1].detail
    assert not openssh_login_works(server, old_identity)
    new_pem = world.catalog.private_key(world.catalog.get("prod").key_id).reveal()
    assert await key_accepted(server, new_pem)  # restricted: no command runs, auth works


async def test_verify_failure_rolls_back_and_old_key_keeps_working(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    # The bastion refuses RSA keys: installing one works, logging in with it does not.
    server = sshd_factory(strict_modes=True, options={"PubkeyAcceptedAlgorithms": "ssh-ed25519"})
    old = world.add("prod", server)
    before = server.authorized_keys_path.read_bytes()

    rows = await _run(world, "prod", key_type="rsa")

    assert _final(rows)[-1] == ("verify", "fail")
    assert "rolled back" in rows[-1].detail and rows[-1].hint
    assert server.authorized_keys_path.read_bytes() == before  # new line taken off again
    assert [k.id for k in world.catalog.keys()] == [old.id]
    assert world.catalog.get("prod").key_id == old.id
    assert world.catalog.rotations() == {}
    assert openssh_login_works(server, _identity(world, old.id, tmp_path, "old"))


async def test_forced_command_account_falls_back_to_waiting(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server, options='command="echo forced-cmd"')
    old_identity = _identity(world, old.id, tmp_path, "old")
    seen: list[StepResult] = []

    task = _rotating(world, seen, wait_seconds=30, poll_interval=0.2)
    try:
        shown = await _row_shown(seen, task, "install", "add this line")
        assert any("neither SFTP nor a shell" in r.detail for r in seen)
        server.authorize(shown.detail.split(": ", 1)[1])
        await _row_shown(seen, task, "remove-old", "remove the line of this key")
        server.deauthorize(old.public_key)
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
    assert _final(seen) == [(step, "ok") for step in ROTATION_STEPS]
    assert not find_keys(server.authorized_keys_path.read_text(), old.public_key)
    assert not openssh_login_works(server, old_identity)


async def test_restricted_key_goes_manual_and_waits_for_the_old_line_to_go(
    world: RotationWorld, sshd_factory: Any
) -> None:
    """The line `key show --restricted` gives (command="/bin/false") allows neither SFTP
    nor exec: rotation says so at install, shows the new line and waits; after the switch
    it asks for the old line to be removed and ends only once the old key is rejected."""
    server = sshd_factory(strict_modes=True)
    server.authorize("# ops keys, do not touch")
    restricted = 'restrict,port-forwarding,permitopen="127.0.0.1:5432",command="/bin/false"'
    old = world.add("prod", server, options=restricted)
    old_pem = world.catalog.private_key(old.id).reveal()
    seen: list[StepResult] = []

    task = _rotating(world, seen, wait_seconds=30, poll_interval=0.2)
    try:
        why = await _row_shown(seen, task, "install", "continuing as --manual")
        assert why.status is StepStatus.RUNNING
        assert "neither SFTP nor a shell" in why.detail
        assert why.hint and "restricted" in why.hint
        shown = await _row_shown(seen, task, "install", "add this line")
        line = shown.detail.split(": ", 1)[1]
        assert line.startswith(restricted + " ssh-ed25519 ")
        assert server.authorized_keys_path.read_text().count("\n") == 2  # nothing written
        server.authorize(line)  # the admin adds it
        ask = await _row_shown(seen, task, "remove-old", "remove the line of this key")
        assert ask.hint and "until the old key is rejected" in ask.hint
        # Switched already: the config uses the new key, the old one still logs in.
        new_id = world.catalog.get("prod").key_id
        assert new_id != old.id and await key_accepted(server, old_pem)
        assert not [r for r in seen if r.step == "cleanup"]
        server.deauthorize(old.public_key)  # the admin removes the old line
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
    assert _final(seen) == [(step, "ok") for step in ROTATION_STEPS]
    assert not await key_accepted(server, old_pem)
    assert await key_accepted(server, world.catalog.private_key(new_id).reveal())
    assert world.catalog.rotations()[old.id]["step"] == "done"


async def test_old_line_not_removed_in_time_fails_and_rerun_resumes(
    world: RotationWorld, sshd_factory: Any
) -> None:
    server = sshd_factory(strict_modes=True)
    restricted = 'restrict,port-forwarding,permitopen="127.0.0.1:5432",command="/bin/false"'
    old = world.add("prod", server, options=restricted)
    old_pem = world.catalog.private_key(old.id).reveal()
    seen: list[StepResult] = []

    task = _rotating(world, seen, wait_seconds=3, poll_interval=0.2)
    try:
        shown = await _row_shown(seen, task, "install", "add this line")
        server.authorize(shown.detail.split(": ", 1)[1])
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
    last = _final(seen)[-1]
    assert last == ("remove-old", "fail")
    assert seen[-1].hint and old.public_key in seen[-1].hint
    assert world.catalog.rotations()[old.id]["step"] == "switched"

    server.deauthorize(old.public_key)
    resumed = await _run(world, "prod", wait_seconds=10, poll_interval=0.2)
    assert _final(resumed) == [(s, "ok") for s in ("check", "generate", "remove-old", "cleanup")]
    assert not await key_accepted(server, old_pem)


async def test_jump_host_and_bastion_sharing_the_key_both_rotate(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    jump, bastion = sshd_factory(strict_modes=True), sshd_factory(strict_modes=True)
    old = world.add("prod", bastion, jumps=[jump])
    old_identity = _identity(world, old.id, tmp_path, "old")

    rows = await _run(world, "prod")

    assert _final(rows) == [(step, "ok") for step in ROTATION_STEPS]
    install = next(r for r in rows if r.step == "install")
    assert jump.user in install.detail and bastion.user in install.detail
    new_identity = _identity(world, world.catalog.get("prod").key_id, tmp_path, "new")
    for server in (jump, bastion):
        assert not openssh_login_works(server, old_identity)
        assert openssh_login_works(server, new_identity)


async def test_bastion_without_sftp_rotates_through_exec(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True, options={"Subsystem": "sftp /bin/false"})
    server.authorize("# keep me")
    old = world.add("prod", server, options="restrict,port-forwarding,pty")
    old_identity = _identity(world, old.id, tmp_path, "old")

    rows = await _run(world, "prod")

    assert _final(rows) == [(step, "ok") for step in ROTATION_STEPS]
    assert "(exec)" in next(r for r in rows if r.step == "install").detail
    text = server.authorized_keys_path.read_text()
    (line,) = find_keys(text, world.catalog.key(world.catalog.get("prod").key_id).public_key)
    assert line.options == "restrict,port-forwarding,pty"
    assert text.startswith("# keep me\n") and len(split_lines(text)) == 2
    assert not openssh_login_works(server, old_identity)


async def test_connection_added_mid_rotation_gets_the_new_key_before_the_switch(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    first, second = sshd_factory(strict_modes=True), sshd_factory(strict_modes=True)
    old = world.add("prod", first)
    old_identity = _identity(world, old.id, tmp_path, "old")
    rows = rotate(world.catalog, "prod", known_hosts=world.known_hosts)
    async for row in rows:  # stop (like an interrupted run) right after verify
        if row.step == "verify":
            assert row.ok
            break
    await rows.aclose()
    world.add("staging", second, reuse=old.id, db_port=5434)  # shares the old key

    resumed = await _run(world, "prod")

    assert _final(resumed)[-1] == ("cleanup", "ok")
    new_identity = _identity(world, world.catalog.get("staging").key_id, tmp_path, "new")
    for server in (first, second):
        assert not openssh_login_works(server, old_identity)
        assert openssh_login_works(server, new_identity)
    assert "prod, staging" in resumed[-1].detail
