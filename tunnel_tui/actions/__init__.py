"""The application layer: every user action once, for the CLI and the TUI alike.

`commands/` (click) and `ui/` (Textual) parse input, call a function here and render
its typed result; neither holds a behaviour of its own. Nothing here imports click or
Textual. Secrets a request needs are resolved in the caller's own session
(`actions.session.Session`) and sent to the agent with the request.
"""
