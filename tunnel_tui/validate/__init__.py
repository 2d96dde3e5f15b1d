"""Step-by-step validation of a connection: an async stream of StepResult
(config, keyring, resolve, tcp, host-key, ssh-auth, channel, db-tls, db-auth, query),
each failure with a hint a person can act on.
"""
