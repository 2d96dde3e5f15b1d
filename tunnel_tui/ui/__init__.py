"""The Textual app: connection list, tunnel-form modal, validation log, keys,
rotation. Textual only; all work goes through the same services as the CLI.
"""
