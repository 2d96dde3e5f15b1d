"""What you need about one connection: how to connect, which bastion and key, last error."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.content import Content
from textual.widgets import Static

from tunnel_tui.core import formatting
from tunnel_tui.core.certificates import needs_attention, stored_certificate
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui import display
from tunnel_tui.ui.hints import app_hint
from tunnel_tui.ui.services import ConnectionDetail


def describe(
    detail: ConnectionDetail, status: TunnelStatus | None, now: datetime, width: int = 0
) -> Content:
    """The facts, one line each (cut to `width` if given), then the whole last error and
    its hint, which wrap: a failure's reason is never cut."""
    conn = detail.connection
    db = conn.database
    port = (status.local_port if status else None) or conn.local_port
    lines: list[Content] = []
    waiting = _waiting_line(detail, status, now)  # wraps, first (added after the cut)
    if waiting is None and port:
        command = display.client_command(db.kind.value, db.user, db.database, conn.local_host, port)
        lines.append(Content.from_markup("[b]$cmd[/b]  [dim]c copy[/]", cmd=command))
    elif waiting is None:
        lines.append(Content.from_markup("[dim]no local port yet: press enter to bring it up[/]"))
    if detail.host_key_fingerprints:
        host_key = "host key " + display.ellipsize(detail.host_key_fingerprints[0], 30)
    else:
        host_key = "host key not trusted yet (validate to see it)"
    lines.append(
        Content.from_markup(
            "[$text-muted]bastion[/]  $bastion  [$text-muted]$hk[/]",
            bastion=conn.bastion.display,
            hk=host_key,
        )
    )
    if detail.key is not None:
        key = detail.key
        shared = len(detail.key_users)
        shared_text = f"shared by {shared} connections" if shared > 1 else "used by this connection"
        lines.append(
            Content.from_markup(
                "[$text-muted]key[/]      $type $fp \"$name\" · $shared · created $age",
                type=key.type.value,
                fp=display.ellipsize(key.fingerprint, 24),
                name=key.name,
                shared=shared_text,
                age=formatting.age_words(key.created, now),
            )
        )
        if key.in_agent:
            lines[-1] += Content(" · in your ssh-agent")
        cert = stored_certificate(key)
        if cert is not None and needs_attention(cert.state(now)):
            lines.append(Content.from_markup("[$warning]! cert[/]   $text",
                                             text=cert.summary(now)))
    else:
        lines.append(Content.from_markup("[$text-muted]key[/]      $id (missing)", id=conn.key_id))
    if width > 0:
        lines = [line.truncate(width, ellipsis=True) for line in lines]
    if waiting is not None:
        lines.insert(0, waiting)
    if status is not None and status.last_error:
        lines.append(
            Content.from_markup("[$error]last[/]     $err", err=terminal_text(status.last_error))
        )
        if status.hint:
            hint = terminal_text(app_hint(status.hint))
            lines.append(Content.from_markup("[$accent]→ $hint[/]", hint=hint))
    elif status is not None and status.reconnects:
        lines.append(
            Content.from_markup(
                "[$text-muted]last[/]     reconnects: $n", n=str(status.reconnects)
            )
        )
    return Content("\n").join(lines)


def _waiting_line(
    detail: ConnectionDetail, status: TunnelStatus | None, now: datetime
) -> Content | None:
    """What the agent is waiting for, instead of "press enter": enter changes nothing."""
    if status is None:
        return None
    if status.state is TunnelState.WAITING_FOR_KEY:
        left = formatting.wait_left(status, now)
        return Content.from_markup(
            "[$warning]waiting for its key on $host$left[/] [dim](the agent brings it up "
            "once the key is accepted)[/]",
            host=detail.connection.bastion.host, left=f" · {left}" if left else "",
        )
    if status.state is TunnelState.WAITING_FOR_SECRET:
        hint = app_hint(status.hint) if status.hint else "bring it up from a session that has it"
        return Content.from_markup("[$warning]waiting for its secret:[/] $hint",
                                   hint=terminal_text(hint))
    return None


class DetailPane(Static):
    """Filled by the screen; shows nothing until a connection is selected."""

    def show(self, detail: ConnectionDetail | None, status: TunnelStatus | None,
             now: datetime | None = None) -> None:
        if detail is None:
            self.update("")
            self.border_title = ""
            return
        self.border_title = detail.connection.name
        width = self.content_size.width or max(self.app.size.width - 4, 0)
        self.set_class(bool(status is not None and status.last_error), "-error")
        self.update(describe(detail, status, now or datetime.now(UTC), width))
