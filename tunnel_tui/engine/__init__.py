"""The tunnel engine (asyncssh): SSH connections to bastions and jump hosts, host-key
checks against our own known_hosts, local listeners on 127.0.0.1, direct-tcpip
forwarding, keepalive, reconnect with backoff, state and traffic statistics.
"""
