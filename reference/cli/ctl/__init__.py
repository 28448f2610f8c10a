"""refctl's parts: `client` (the API over a unix socket), `flags` (docker's flag syntax),
`template` (the Go-template subset of --format), `output` (tables and human units),
`containers`, `images`, `system` (the verbs)."""
