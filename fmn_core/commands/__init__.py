"""The `fmn` commands, a module per group, each with ``register(sub)``; ``fmn_core.cli`` builds the parser from them."""
