"""Messages screens post upward; the app (or the screen stack) decides what opens."""

from __future__ import annotations

from textual.message import Message


class StartValidation(Message):
    def __init__(self, name: str, *, wait_for_key: bool = False) -> None:
        super().__init__()
        self.connection = name
        self.wait_for_key = wait_for_key


class StartRotation(Message):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.connection = name


class ShowKeys(Message):
    pass


class OpenSandbox(Message):
    pass
