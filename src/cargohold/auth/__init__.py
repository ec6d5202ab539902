"""Access control: identities, roles, credentials, tokens and access decisions."""
