"""The pure-Python heart: model, URL parsing, config (TOML), keys, secrets, known hosts.

Nothing here may import Textual or asyncssh (a test checks it in a subprocess);
keys are handled with `cryptography`. The CLI, the TUI and the agent all build on it.
"""
