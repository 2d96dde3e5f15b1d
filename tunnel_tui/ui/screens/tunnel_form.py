"""The tunnel form: database fields, then the SSH bastion that reaches it.

Inline errors come from the core parser (`core.urls`) with the field they concern;
Save stays refused until every field is valid. Saving runs in a thread (keyring).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (
    Button,
    Input,
    Label,
    RadioSet,
    Select,
    Static,
    TextArea,
)

from tunnel_tui.actions.connections import ConnectionInput, KeyInput, KeySource, SaveResult
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Connection, DbKind, Key
from tunnel_tui.core.pasted_address import read_pasted
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.urls import KNOWN_SCHEMES
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.vault_gate import needs_vault, unlock_then
from tunnel_tui.ui.widgets.footer import WrappingFooter
from tunnel_tui.ui.widgets.form_parts import FormScroll, StateCheckbox, StateRadioButton

# TLS values spelled as each driver spells them (MySQL's PREFERRED, libpq's prefer).
_TLS_VALUES: dict[DbKind, tuple[str, ...]] = {
    DbKind.POSTGRESQL: ("prefer", "require", "verify-ca", "verify-full", "allow", "disable"),
    DbKind.MYSQL: ("PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY", "DISABLED"),
    DbKind.CLICKHOUSE: ("true", "false"),
    DbKind.VERTICA: ("prefer", "require", "verify-ca", "verify-full", "disable"),
    DbKind.TRINO: ("true", "false"),
}


def tls_choices(kind: DbKind, current: str = "") -> list[tuple[str, str]]:
    """(label, value) for the TLS select: `sslmode=prefer`, `ssl-mode=PREFERRED`, …"""
    from tunnel_tui.core.urls import TLS_OPTION

    option = TLS_OPTION[kind]
    values = list(_TLS_VALUES[kind])
    if current and current not in values:
        values.append(current)  # an edited connection keeps what it has
    return [("driver default", "")] + [(f"{option}={v}", v) for v in values]

KEY_SOURCES = [
    (KeySource.GENERATE, "Generate"),
    (KeySource.PASTE, "Paste"),
    (KeySource.FILE, "File"),
    (KeySource.REUSE, "Reuse"),
    (KeySource.AGENT, "ssh-agent"),
]


def field_id(core_field: str) -> str:
    """The core parser's field ("db.host", "ssh.user", "name") -> our input's id."""
    if core_field in ("db", "db.url"):
        return "host"
    if core_field in ("ssh", "ssh.url"):
        return "ssh-host"
    if core_field.startswith("db."):
        return core_field.removeprefix("db.")
    if core_field.startswith("ssh."):
        return "ssh-" + core_field.removeprefix("ssh.")
    if core_field in ("key", "private_key", "passphrase", "name"):
        return core_field
    return "form"


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


@dataclass(frozen=True)
class FormOutcome:
    form: ConnectionInput
    saved: SaveResult
    then: str | None = None  # "validate" after Save & validate


def _row(label: str, *widgets: Widget, error: str) -> Vertical:
    return Vertical(
        Horizontal(Label(label, classes="field-label"), *widgets, classes="field-row"),
        Label("", id=f"{error}-error", classes="field-error"),
        classes="field",
    )


class TunnelFormScreen(ModalScreen[FormOutcome | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save"),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
    ]

    def __init__(
        self,
        services: Services,
        *,
        editing: Connection | None = None,
        keys: list[Key] | None = None,
        sandbox: bool = False,
    ) -> None:
        super().__init__()
        self.services = services
        self.editing = editing
        self.sandbox = sandbox  # say so in the title: it lives in a throwaway home
        self._initial: tuple[object, ...] = ()
        self._keys = keys
        self._tried = False
        self._taken: list[str] = []
        self.errors: dict[str, str] = {}
        self._kind = DbKind.POSTGRESQL
        self._paste_notes: dict[str, str] = {}
        self._agent_problem = ""  # why the ssh-agent's keys could not be listed

    # -- layout --------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        conn = self.editing
        db = conn.database if conn else None
        ssh = conn.bastion if conn else None
        kind = self._kind = db.kind if db else DbKind.POSTGRESQL

        def field(widget_id: str, value: str = "", example: str = "", *, placeholder: str = "",
                  **kw: object) -> Input:
            # Placeholders read as examples ("e.g. …", dimmed), never as a filled value.
            shown = f"e.g. {example}" if example else placeholder
            return Input(value, placeholder=shown, id=widget_id, compact=True, **kw)  # type: ignore[arg-type]

        from tunnel_tui.core.urls import TLS_OPTION

        tls = (db.option(TLS_OPTION[db.kind], "") or "") if db else ""
        with FormScroll(classes="dialog", id="form-dialog") as box:
            box.border_title = f"Edit {conn.name}" if conn else "New connection"
            if self.sandbox:
                box.border_title += " · in the sandbox (thrown away on quit)"
            yield _row("Name", field("name", conn.name if conn else "", "analytics-pg"),
                       error="name")
            yield _row(
                "Database",
                Select([(k.label, k) for k in DbKind], value=kind, allow_blank=False, id="kind",
                       compact=True),
                error="kind",
            )
            yield _row("Host", field("host", db.host if db else "", "10.0.12.34"),
                       Label("as the bastion sees it", classes="field-note"), error="host")
            yield _row("Port", field("port", str(db.port) if db else "",
                                     placeholder=f"default {kind.default_port}", classes="short"),
                       error="port")
            yield _row("DB name", field("database", db.database if db else "", "analytics"),
                       error="database")
            yield _row("User", field("user", db.user if db else "", "reader"), error="user")
            yield _row("Password",
                       field("password", "", placeholder="(unchanged)" if conn else "",
                             password=True),
                       Label("", classes="field-note", id="password-note"), error="password")
            yield _row("TLS", Select(tls_choices(kind, tls), value=tls, allow_blank=False,
                                     id="tls", compact=True), error="tls")
            yield Label("Through the SSH bastion", classes="form-heading")
            with Vertical(id="bastion-fields"):
                yield _row("Host", field("ssh-host", ssh.host if ssh else "",
                                         "bastion.example.com"), error="ssh-host")
                yield _row("Port", field("ssh-port", str(ssh.port) if ssh else "",
                                         placeholder="default 22", classes="short"),
                           error="ssh-port")
                yield _row("User", field("ssh-user", ssh.user if ssh else "", "tunnel"),
                           error="ssh-user")
                with Horizontal(classes="field-row"):
                    yield Label("Key", classes="field-label")
                    with RadioSet(id="key-source", compact=True):
                        for source, label in KEY_SOURCES:
                            chosen = (
                                source is KeySource.REUSE if conn else source is KeySource.GENERATE
                            )
                            yield StateRadioButton(label, value=chosen, name=source.value,
                                                   compact=True)
                yield TextArea(id="key-pem", classes="key-input", compact=True)
                yield field("key-path", "", "~/.ssh/id_ed25519", classes="key-input")
                yield Select[str]([], prompt="choose a key", id="key-reuse",
                                  classes="key-input", compact=True)
                yield Select[str]([], prompt="a key in your ssh-agent", id="key-agent",
                                  classes="key-input", compact=True)
                yield Label("", id="key-error", classes="field-error")
                passphrase = field("passphrase", "", placeholder="only if the key has one",
                                   password=True)
                yield _row("Passphrase", passphrase, error="passphrase")
            yield _row("Always", StateCheckbox("up whenever the agent starts (autostart)",
                                          value=bool(conn and conn.autostart), id="autostart",
                                          compact=True), error="autostart")
            yield Static("", id="form-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", id="save", compact=True)
                yield Button("Save & validate", id="save-validate", variant="primary",
                             compact=True)

        yield WrappingFooter()

    def on_mount(self) -> None:
        self._show_key_source()
        self.load_keys()
        self.query_one("#name", Input).focus()
        self.call_after_refresh(self._remember_initial)

    def _remember_initial(self) -> None:
        self._initial = self._values()

    def _values(self) -> tuple[object, ...]:
        """What the user can change (Esc asks before throwing changes away)."""
        values: list[object] = [box.value for box in self.query(Input)]
        values += [s.value for s in self.query(Select) if s.id != "key-reuse"]
        values += [self.key_source, self.query_one("#key-pem", TextArea).text]
        if self.key_source is KeySource.REUSE:
            reuse = self.query_one("#key-reuse", Select).value
            current = self.editing.key_id if self.editing else None
            values.append(None if reuse == current or not isinstance(reuse, str) else reuse)
        return tuple(values)

    @property
    def changed(self) -> bool:
        return bool(self._initial) and self._values() != self._initial

    @work(exclusive=True, thread=True, group="form-keys")
    def load_keys(self) -> None:
        try:
            keys = self._keys if self._keys is not None else self.services.keys()
            self._taken = [c.name for c in self.services.connections()]
        except (TunnelTuiError, OSError):
            keys = []
        self.app.call_from_thread(self._set_keys, keys)
        try:
            state = self.services.secrets_state()
        except (TunnelTuiError, OSError, ImportError):
            return
        where = ("stored in the encrypted vault" if state.backend.startswith("vault")
                 else "stored in the OS keyring")
        self.app.call_from_thread(self.query_one("#password-note", Label).update, where)

    def _set_keys(self, keys: list[Key]) -> None:
        select = self.query_one("#key-reuse", Select)
        select.set_options([(f"{k.name}  {k.type.value}  {k.fingerprint[:19]}…", k.id)
                            for k in keys])
        if self.editing is not None and any(k.id == self.editing.key_id for k in keys):
            select.value = self.editing.key_id

    # -- reactions -----------------------------------------------------------------
    @property
    def key_source(self) -> KeySource:
        pressed = self.query_one("#key-source", RadioSet).pressed_button
        if pressed is None or not pressed.name:
            return KeySource.GENERATE
        return KeySource(pressed.name)

    def _show_key_source(self) -> None:
        source = self.key_source
        self.query_one("#key-pem").display = source is KeySource.PASTE
        self.query_one("#key-path").display = source is KeySource.FILE
        self.query_one("#key-reuse").display = source is KeySource.REUSE
        self.query_one("#key-agent").display = source is KeySource.AGENT
        self.query_one("#passphrase-error").parent.display = source in (  # type: ignore[union-attr]
            KeySource.PASTE, KeySource.FILE)

    @on(RadioSet.Changed, "#key-source")
    def _source_changed(self) -> None:
        self._show_key_source()
        if self.key_source is KeySource.AGENT:
            self.load_agent_keys()
        self._revalidate()

    @work(exclusive=True, thread=True, group="form-agent-keys")
    def load_agent_keys(self) -> None:
        """The keys in this app's ssh-agent ($SSH_AUTH_SOCK), listed with their comments."""
        try:
            options = [(k.label, k.public_line) for k in self.services.agent_keys()]
            problem = "" if options else "Your ssh-agent holds no keys: ssh-add one first"
        except TunnelTuiError as exc:
            options, problem = [], f"{exc.message} ({exc.hint})" if exc.hint else exc.message
        self.app.call_from_thread(self._set_agent_keys, options, problem)

    def _set_agent_keys(self, options: list[tuple[str, str]], problem: str) -> None:
        self.query_one("#key-agent", Select).set_options(options)
        self._agent_problem = problem
        if problem:
            self._show_errors({**self.errors, "key": problem})

    @on(Select.Changed, "#kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, DbKind):
            self.query_one("#port", Input).placeholder = f"default {event.value.default_port}"
            if event.value is self._kind:
                return  # the first Changed, on mount: the TLS choices are already right
            self._kind = event.value
            tls = self.query_one("#tls", Select)
            current = tls.value if isinstance(tls.value, str) else ""
            tls.set_options(tls_choices(event.value))
            tls.value = current if current in _TLS_VALUES[event.value] else ""

    @on(Input.Changed, "#host")
    def _db_host_changed(self, event: Input.Changed) -> None:
        self._paste_notes.pop("host", None)
        pasted = read_pasted(event.value)
        if pasted is None:
            return
        if pasted.is_ssh:
            self._note("host", "That is an SSH address: paste it into the bastion's Host below")
        elif pasted.kind is None and pasted.scheme:
            self._note("host", f"That is a {pasted.scheme}:// URL, not a database's: paste a "
                       f"database URL ({KNOWN_SCHEMES}) or type the host")
        else:
            if pasted.kind is not None:
                self.query_one("#kind", Select).value = pasted.kind
            self._fill(host=pasted.host, port=pasted.port, user=pasted.user,
                       database=pasted.database)
            if pasted.kind is not None:
                self._fill_tls(pasted.kind, dict(pasted.options))
            if pasted.had_password:
                self._note("password", "The password in the pasted URL was not kept: "
                           "type it here", blocking=False)

    @on(Input.Changed, "#ssh-host")
    def _ssh_host_changed(self, event: Input.Changed) -> None:
        self._paste_notes.pop("ssh-host", None)
        pasted = read_pasted(event.value)
        if pasted is None:
            return
        if pasted.kind is not None:
            self._note("ssh-host", "That is a database URL: paste it into Host above (the "
                       "database's); here goes the bastion")
        elif pasted.scheme and not pasted.is_ssh:
            self._note("ssh-host", f"That is a {pasted.scheme}:// URL: paste an ssh:// address "
                       "or type the bastion's host")
        else:
            self._fill(**{"ssh-host": pasted.host, "ssh-port": pasted.port,
                          "ssh-user": pasted.user})

    def _fill(self, **values: str | int | None) -> None:
        """Put a pasted address's parts into their fields (empty parts change nothing)."""
        for field_name, value in values.items():
            if value not in (None, ""):
                self.query_one(f"#{field_name}", Input).value = str(value)

    def _fill_tls(self, kind: DbKind, options: dict[str, str]) -> None:
        from tunnel_tui.core.urls import TLS_OPTION

        value = options.get(TLS_OPTION[kind])
        if value:
            tls = self.query_one("#tls", Select)
            tls.set_options(tls_choices(kind, value))
            tls.value = value

    def _note(self, field_name: str, message: str, *, blocking: bool = True) -> None:
        """A word about what was pasted, under its field; a blocking one (text in the wrong
        field) stays, and refuses Save, until the field changes."""
        if blocking:
            self._paste_notes[field_name] = message
        label = self.query_one(f"#{field_name}-error", Label)
        label.update(f"✕ {message}")
        label.display = True

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def _revalidate(self) -> None:
        if self._tried:
            self.collect()

    # -- validation ----------------------------------------------------------------
    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def collect(self) -> ConnectionInput | None:
        """Check every field (the core parser decides), show errors under them."""
        from tunnel_tui.core import urls

        kind_value = self.query_one("#kind", Select).value
        kind = kind_value if isinstance(kind_value, DbKind) else DbKind.POSTGRESQL
        tls_value = self.query_one("#tls", Select).value
        taken = [n for n in self._taken if n != (self.editing.name if self.editing else None)]
        parsed = urls.parse_form(
            name=self._value("name"),
            kind=kind.value,
            host=self._value("host"),
            port=self._value("port"),
            database=self._value("database"),
            user=self._value("user"),
            tls=tls_value if isinstance(tls_value, str) else "",
            ssh_host=self._value("ssh-host"),
            ssh_port=self._value("ssh-port"),
            ssh_user=self._value("ssh-user"),
            taken_names=taken,
        )
        errors: dict[str, str] = {}
        for error in parsed.errors:
            errors.setdefault(field_id(error.field), _sentence(error.message))
        source = self.key_source
        pem = self.query_one("#key-pem", TextArea).text.strip()
        path = self._value("key-path")
        reuse = self.query_one("#key-reuse", Select).value
        agent_key = self.query_one("#key-agent", Select).value
        if source is KeySource.AGENT and not isinstance(agent_key, str):
            errors["key"] = self._agent_problem or "Choose a key from your ssh-agent"
        elif source is KeySource.PASTE and "PRIVATE KEY" not in pem:
            errors["key"] = "Paste the private key (-----BEGIN … PRIVATE KEY-----)"
        elif source is KeySource.FILE and not (path and Path(path).expanduser().is_file()):
            errors["key"] = "Choose a private key file that exists"
        elif source is KeySource.REUSE and not isinstance(reuse, str):
            errors["key"] = "Choose a key to reuse"
        errors.update(self._paste_notes)  # what was pasted into the wrong field
        self._show_errors(errors)
        if errors or parsed.spec is None:
            return None
        password = self.query_one("#password", Input).value
        passphrase = self.query_one("#passphrase", Input).value
        key = KeyInput(
            source,
            pem=Secret(pem) if source is KeySource.PASTE else None,
            path=path if source is KeySource.FILE else "",
            reuse=reuse if isinstance(reuse, str) and source is KeySource.REUSE else "",
            agent_public_line=(
                agent_key if source is KeySource.AGENT and isinstance(agent_key, str) else ""
            ),
            passphrase=Secret(passphrase) if passphrase else None,
        )
        return ConnectionInput(
            name=parsed.spec.name,
            database=parsed.spec.database,
            bastion=parsed.spec.bastion,
            password=Secret(password) if password else None,
            key=key,
            autostart=self.query_one("#autostart", StateCheckbox).value,
        )

    def _show_errors(self, errors: dict[str, str]) -> None:
        self.errors = errors
        for label in self.query(".field-error"):
            field = (label.id or "").removesuffix("-error")
            message = errors.get(field, "")
            if isinstance(label, Label | Static):
                label.update(f"✕ {message}" if message else "")
            label.display = bool(message)
        save_disabled = bool(errors) and self._tried
        self.query_one("#save", Button).disabled = save_disabled
        self.query_one("#save-validate", Button).disabled = save_disabled

    # -- saving --------------------------------------------------------------------
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self._submit(None)

    @on(Button.Pressed, "#save-validate")
    def _save_validate(self) -> None:
        self._submit("validate")

    def _submit(self, then: str | None) -> None:
        self._tried = True
        form = self.collect()
        if form is None:
            first = next(iter(self.errors), None)
            if first and first not in ("form", "key"):
                self.query_one(f"#{first}").focus()
            return
        self.query_one("#save", Button).disabled = True
        self.query_one("#save-validate", Button).disabled = True
        self.save(form, then)

    @work(exclusive=True, thread=True, group="form-save")
    def save(self, form: ConnectionInput, then: str | None) -> None:
        original = self.editing.name if self.editing else None
        try:
            saved = self.services.save(form, original_name=original)
        except TunnelTuiError as exc:
            if needs_vault(exc.message, exc.hint):
                self.app.call_from_thread(self._unlock_then_save, form, then, exc)
                return
            self.app.call_from_thread(self._save_failed, exc)
            return
        except OSError as exc:
            self.app.call_from_thread(
                self._save_failed, TunnelTuiError(str(exc), field="key")
            )
            return
        self.app.call_from_thread(self.dismiss, FormOutcome(form, saved, then))

    def _unlock_then_save(self, form: ConnectionInput, then: str | None,
                          exc: TunnelTuiError) -> None:
        """No keyring: the key and password go to the vault, which must be unlocked."""
        unlock_then(self.app, self.services, "Saving", lambda: self.save(form, then),
                    otherwise=lambda: self._save_failed(exc))

    def _save_failed(self, exc: TunnelTuiError) -> None:
        field = field_id(exc.field or "form")
        known = {w.id.removesuffix("-error") for w in self.query(".field-error") if w.id}
        message = exc.message + (f" — {exc.hint}" if exc.hint else "")
        self._show_errors({field if field in known else "form": message})
        self.query_one("#save", Button).disabled = False
        self.query_one("#save-validate", Button).disabled = False

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return
        from tunnel_tui.ui.screens.confirm import ConfirmScreen

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmScreen("Discard changes?", "What you typed in this form is lost.",
                          confirm_label="Discard"),
            answered,
        )
