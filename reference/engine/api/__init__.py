"""refd's HTTP API: `server` (the threaded server on a unix socket, request and response
plumbing, errors), `routes` (the route table), `containers`, `images`, `system` (handlers)."""
