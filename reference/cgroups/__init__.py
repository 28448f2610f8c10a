"""The cgroup layer of refrun: OCI `linux.resources` → cgroup v1 or v2 files.

`manager.new_manager(cgroups_path)` picks the driver for this host (`v1` or `v2`),
`resources.Resources.from_spec` validates the spec's resources, and `mounts` reads mountinfo.
Every entry point takes a filesystem `root` so that tests can run on fake trees. Nothing is
imported here, so that `import reference.cgroups.resources` stays cheap.
"""
