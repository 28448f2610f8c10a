"""refd, the reference engine daemon: a Docker Engine API v1.41 subset on a unix socket.

One job per module: `config` (daemon.json + flags), `api/` (HTTP server and routes), `store`
(containers on disk), `create` (request → validated container), `ocispec` (container → OCI
config.json), `security` (capabilities, seccomp, masked paths), `etcfiles`, `runtime` (the OCI
runtime CLI), `monitor` (exits and OOM events), `logs`, `events`, `stats`, `lifecycle`
(start/stop/kill/rm/...), `execs`, `images` (glue to reference.image), `daemon` (wiring, restore,
shutdown). Nothing is imported here: `import reference.engine.units` stays cheap for refctl.
"""
