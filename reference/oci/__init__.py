"""OCI runtime-spec layer of refrun: config.json types, validation, state and lifecycle."""
