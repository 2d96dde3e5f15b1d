"""The sandbox: a throwaway home, an in-process SSH bastion and real local databases,
so anyone can try tunnel-tui without touching their own config or keyring."""
