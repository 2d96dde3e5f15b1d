"""The background agent: a process that owns the live tunnels, so they outlive the
TUI, and serves a versioned JSON protocol on a Unix socket (0600, peer uid checked)
for status, up, down, events and shutdown. Status needs no keyring.
"""
