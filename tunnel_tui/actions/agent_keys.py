"""The keys are in the vault the agent holds (DESIGN.md, "Where a secret comes from",
source 3): the caller cannot read them and the agent never hands one out, so SSH work
that needs a key runs in the agent (`key-work`, agent/keywork.py). `AgentKeys` is the
rotation.KeyHolder that asks for it; `agent_keys()` says whether the caller is in that
case."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.rotation import LineRemoval


class AgentKeys:
    """rotation.KeyHolder: the agent logs in with the keys of the vault it holds."""

    def __init__(self, home: Path | None, *, timeout: float = 20.0) -> None:
        self.home = home
        self._timeout = timeout

    async def _call(self, action: str, hops: Sequence[SshEndpoint], **args: Any) -> dict[str, Any]:
        from tunnel_tui.agent.client import AsyncAgentClient
        from tunnel_tui.agent.keywork import hops_to_json, older_agent

        client = AsyncAgentClient(self.home)
        try:
            return await client.call(
                "key-work",
                timeout=self._timeout * (len(hops) + 1) + 30.0,  # logins, then an edit
                action=action,
                hops=hops_to_json(hops),
                connect_timeout=self._timeout,
                **args,
            )
        except TunnelTuiError as exc:
            raise older_agent("log in with the keys of its vault", exc) from None

    async def login_works(self, hops: Sequence[SshEndpoint]) -> bool:
        return bool((await self._call("login", hops))["accepted"])

    async def add_line(self, hops: Sequence[SshEndpoint], line: str, like: str | None) -> str:
        from tunnel_tui.engine.authorized_keys import ManualInstallRequired

        reply = await self._call("add-line", hops, line=line, like=like)
        manual = reply.get("manual")
        if manual:
            raise ManualInstallRequired(str(manual.get("message")), hint=manual.get("hint"))
        return str(reply["method"])

    async def remove_lines(
        self, hops: Sequence[SshEndpoint], public_keys: Sequence[str]
    ) -> list[LineRemoval]:
        reply = await self._call("remove-lines", hops, public_keys=list(public_keys))
        return [LineRemoval.from_json(item) for item in reply["removed"]]

    async def meet_host_keys(
        self, hops: Sequence[SshEndpoint], *, accept_new: bool, accept_keys: Collection[str]
    ) -> list[tuple[str, str, str]]:
        """engine.ssh.meet_host_keys in the agent: (fingerprint, outcome, why a hop was
        not reached) per hop met."""
        reply = await self._call(
            "meet-host-keys", hops, accept_new=accept_new, accept_keys=list(accept_keys)
        )
        return [(str(h["fingerprint"]), str(h["host_key"]), str(h.get("error") or ""))
                for h in reply["hops"]]

    def secret_for_agent(self, key_id: str) -> Secret | None:
        return None  # the agent reads the new key from the vault it holds


def agent_keys(catalog: object, home: Path | None) -> AgentKeys | None:
    """AgentKeys when the catalog's store is the vault the agent holds; None when the
    caller reads its keys itself (its keyring, or a vault unlocked in it) — or has no
    store at all, which the work then reports as it always did. Opens the store."""
    from tunnel_tui.agent.client import AgentVaultStore

    try:
        store = getattr(catalog, "store", None)
        name = getattr(store, "backend_name", None)
    except TunnelTuiError:
        return None
    return AgentKeys(home) if name == AgentVaultStore.backend_name else None


def vault_only_in_agent(catalog: object, home: Path | None) -> bool:
    """Is the catalog's only store the vault the agent holds? (Opens the store.)"""
    return agent_keys(catalog, home) is not None
