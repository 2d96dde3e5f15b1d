"""Engine knobs. Tests pass small values (backoff, poll intervals)."""

from __future__ import annotations

from dataclasses import dataclass

# AES-GCM runs on AES-NI and halves the forwarder's CPU against chacha20 (PERF.md);
# the rest is asyncssh's default order, so any server still finds a common cipher.
PREFERRED_CIPHERS: tuple[str, ...] = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


@dataclass(frozen=True)
class EngineSettings:
    backoff_base: float = 0.5  # first reconnect delay, seconds
    backoff_cap: float = 30.0  # longest delay between reconnect attempts
    connect_timeout: float = 15.0  # TCP + SSH handshake + auth, per hop
    stats_interval: float = 0.25  # counters are published at most this often
    # Bigger channel windows and packets than asyncssh's 2 MiB / 32 KiB: fewer
    # window adjusts and packets per byte (PERF.md). 256 KiB is OpenSSH's packet cap.
    window: int = 8 * 1024 * 1024
    max_pktsize: int = 128 * 1024
    # A channel's window grows with its bandwidth-delay product up to this (forward.py):
    # the most one forwarded connection can make us buffer for a client not reading.
    max_window: int = 32 * 1024 * 1024
    quickack: bool = True  # TCP_QUICKACK after each read on the SSH socket (PERF.md)
    # Join the SSH socket writes made within one callback (a read processed, a local
    # client's data sent) into one send(): asyncssh writes each packet, and an
    # SSH_MSG_IGNORE before it, separately (docs/PERF-WORK.md).
    cork_writes: bool = True
    # With cork_writes: the data one SSH read brings for a local client leaves in one
    # send() when the read is processed, not one send() per SSH packet.
    hold_reads: bool = True
    coalesce_writes: bool = False  # one send() per loop iteration on the SSH socket
    encryption_algs: tuple[str, ...] = PREFERRED_CIPHERS
    # No SSH_MSG_IGNORE before every packet under AEAD ciphers, no per-packet log
    # formatting while packet logging is off (engine/asyncssh_shims.py).
    skip_aead_ignore: bool = True
    # After this many bytes moved, freed heap memory is handed back to the OS at the
    # next quiet moment (engine/memory.py); 0 never does.
    trim_after_bytes: int = 32 * 1024 * 1024
    # SO_REUSEPORT on the local listener: worker processes, each with its own SSH
    # connection, share one tunnel's port (measured in the benchmark only so far).
    reuse_port: bool = False
    auth_poll_interval: float = 5.0  # validation's "wait for the key" retry period
    # An ssh-agent signature slower than this means a touch (or a confirmation) is awaited.
    slow_signature: float = 1.0
    touch_timeout: float = 60.0  # then, how much longer a connect may wait for the touch
