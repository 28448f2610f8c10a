"""Image store of the reference engine: content-addressed blobs, unpacked layers, overlay
snapshots, docker-save/OCI archives and the registry client.

One job per module: `refs` (image references), `blobs` (content-addressed files), `layers`
(layer tars and whiteouts), `manifest` (OCI/Docker manifests), `index` (the store's metadata
file), `imageconfig` (config JSON for import/commit, the inspect view), `store` (ImageStore),
`removal` (rmi and garbage collection, part of ImageStore), `archive` (load/save), `snapshot`
(overlay mounts for container rootfs), `registry*` (Distribution API client).
Nothing is imported here, so that importing one module stays cheap.
"""
