"""Meeting a connection's host keys with the user's consent (`add --accept-host-key`).

A host key is decided before SSH auth, so even a freshly added connection whose key
is not installed yet can have its (first) bastion's key checked and saved: exactly
the key whose fingerprint the user gave, or any unknown one with accept-new. Hops
behind a hop we cannot log in to yet are reported as not reached.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.catalog import Catalog
    from tunnel_tui.core.client_keys import ClientKey


@dataclass(frozen=True)
class HopHostKey:
    """One hop's host key after meeting it."""

    label: str  # "bastion user@host:port", "jump host 1 ..."
    fingerprint: str  # "" when the hop was not reached
    outcome: str  # "trusted", "accepted", "unknown", "changed", "not reached"
    why: str = ""  # for "not reached": what stopped us before its host key (DNS, TCP, ...)

    @property
    def refused(self) -> bool:
        return self.outcome in ("unknown", "changed")

    def describe(self) -> str:
        if self.outcome == "not reached" and self.why:
            return f"{self.label}: not reached: {self.why.removeprefix(self.label + ': ')}"
        if self.outcome == "not reached":
            return f"{self.label}: not reached yet (log in works after the key is installed)"
        what = {
            "trusted": "already trusted",
            "accepted": "new, matches what you gave: saved",
            "unknown": "unknown and not the fingerprint given: NOT trusted",
            "changed": "CHANGED from the one on file: NOT trusted (man-in-the-middle?)",
        }[self.outcome]
        return f"{self.label}: {self.fingerprint} {what}"


async def meet(
    session: Session, name: str, *, accept_host_keys: Collection[str] = (),
    accept_new: bool = False,
) -> list[HopHostKey]:
    """Connect to NAME's hops (closing again) to trust their host keys with consent."""
    import asyncio
    import dataclasses

    from tunnel_tui.actions.agent_keys import agent_keys
    from tunnel_tui.core.errors import TunnelTuiError
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.paths import known_hosts_path
    from tunnel_tui.engine.ssh import hop_label, meet_host_keys

    catalog = session.catalog()
    conn = catalog.get(name)
    hops = conn.hops
    in_agent = await asyncio.to_thread(agent_keys, catalog, session.home)
    met: list[tuple[str, str, str]] | None = None  # fingerprint, outcome, why not reached
    if in_agent is not None:  # the vault only the agent holds: it logs in (hops 2+)
        explicit = [dataclasses.replace(h, key_id=h.key_id or conn.key_id) for h in hops]
        try:
            met = await in_agent.meet_host_keys(
                explicit, accept_new=accept_new, accept_keys=accept_host_keys
            )
        except TunnelTuiError:  # an older agent, a key it cannot use: the stand-in below
            met = None
    if met is None:
        key_ids = {conn.key_id, *(h.key_id for h in conn.jumps if h.key_id)}
        keys = {k: await asyncio.to_thread(_client_key_or_stand_in, catalog, k) for k in key_ids}
        traces = await meet_host_keys(
            hops, keys, KnownHosts(known_hosts_path(session.home)), key_id=conn.key_id,
            accept_new=accept_new, accept_keys=accept_host_keys,
        )
        # A hop whose host key was never decided stopped before it (DNS, TCP, ...): say why.
        met = [(trace.fingerprint, trace.host_key, "" if trace.host_key else trace.error)
               for trace in traces]
    out = []
    for index, hop in enumerate(hops):
        label = hop_label(hop, index, len(hops))
        fingerprint, outcome, why = met[index] if index < len(met) else ("", "", "")
        out.append(HopHostKey(label, fingerprint, outcome or "not reached", why))
    return out


def _client_key_or_stand_in(catalog: Catalog, key_id: str) -> ClientKey:
    """The key to log in with, or, where this process cannot read it (the vault held by
    the agent, a locked keyring, an ssh-agent that is gone), a throwaway key that only
    fails auth: the first hop's host key is decided before that, and hops behind it
    are reported as not reached."""
    from tunnel_tui.core.errors import SecretStoreError
    from tunnel_tui.core.keys import generate

    try:
        return catalog.client_key(key_id)
    except SecretStoreError:
        return generate().private_pem
