"""Push and pull are content-addressed (REG-PUSH-01, REG-PULL-01): what the registry stores is
the image, byte for byte, and pulling it back into an engine that no longer has it gives the
same image.

The image is made for the test (a commit of a container that wrote a file of its own), so the
layer on top exists nowhere but in the engine, then in the registry. It goes to a loopback
registry beside the target's own daemon (insecure by default, REG-05), whose manifest, config
and layer blobs are read over the registry's HTTP API and hashed here; after the engine drops
the image entirely, the pull must fetch all of it.
"""

from __future__ import annotations

import json
import secrets

import pytest

from fixtures.containers import Containers
from fixtures.probe import SLEEP, probe
from fixtures.registry import (
    MANIFEST_V2,
    Registry,
    assert_round_trip,
    layer_diff_id,
    round_trip,
    sha256,
)
from fixtures.registry_fixtures import loopback_registry as loopback_registry
from fixtures.session import unique_name
from fixtures.targets.base import ContainerSpec, Driver

CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def image_of_its_own(target: Driver, containers: Containers) -> str:
    """A committed image with a new layer (a file with random content): its ref."""
    container = containers.start(ContainerSpec(command=SLEEP))
    wrote = containers.exec(container, probe("write", "/cts-marker", secrets.token_hex(16)))
    assert wrote.exit_code == 0, wrote.stderr
    ref = f"{unique_name('src')}:t"
    target.commit(container, ref)
    return ref


@pytest.mark.req("REG-PUSH-01", "REG-PULL-01")
@pytest.mark.needs("registry", "image-store")
def test_pushed_image_comes_back_byte_identical(
    target: Driver, containers: Containers, loopback_registry: Registry
) -> None:
    source = image_of_its_own(target, containers)
    try:
        with round_trip(target, loopback_registry, source, untag_source=True) as trip:
            manifest = trip.manifest
            assert manifest is not None, f"push: {trip.pushed.stderr}"
            repository = trip.name.split("/", 1)[1]
            # The manifest: schema 2, its digest the hash of the very bytes the registry holds.
            assert manifest.document.get("mediaType") == MANIFEST_V2, manifest.document
            assert manifest.digest == sha256(manifest.body)
            # The config blob is the image: its hash is the image ID.
            config_ref = manifest.document["config"]
            assert config_ref["mediaType"] == CONFIG_V1
            assert config_ref["digest"] == trip.before["Id"]
            config_blob = loopback_registry.blob(repository, config_ref["digest"])
            assert sha256(config_blob) == trip.before["Id"]
            diff_ids = json.loads(config_blob)["rootfs"]["diff_ids"]
            assert diff_ids == trip.before["RootFS"]["Layers"]
            # Each layer blob matches its descriptor and unpacks to the image's layer.
            layers = manifest.document["layers"]
            assert [layer["mediaType"] for layer in layers] == [LAYER_GZIP] * len(diff_ids)
            for layer, diff_id in zip(layers, diff_ids, strict=True):
                blob = loopback_registry.blob(repository, layer["digest"])
                assert (sha256(blob), len(blob)) == (layer["digest"], layer["size"])
                assert layer_diff_id(blob) == diff_id
            # Push and pull round trip; the pulled image has the same layers too.
            assert_round_trip(trip)
            assert trip.after is not None
            assert trip.after["RootFS"]["Layers"] == diff_ids
    finally:
        target.remove_image(source)
