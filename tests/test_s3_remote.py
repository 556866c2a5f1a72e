"""The same registry story on an S3 remote: dvc-s3 against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollbackkit import Registry
from rollbackkit.bundle.manifest import md5_file

from .conftest import Data

moto_server = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency")
pytest.importorskip("dvc_s3", reason="dvc-s3 is needed for s3:// remotes")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3 API (moto) on a free loopback port, with one bucket."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
    yield endpoint
    server.stop()


def test_register_restore_and_verify_through_an_s3_remote(
    git_repo: Path, s3_endpoint: str, data: Data, models: dict
) -> None:
    registry = Registry.init(git_repo, remote="s3://models/registry")
    with registry.dvc.repo.config.edit() as conf:  # what `dvc remote modify ... endpointurl` writes
        conf["remote"]["rollbackkit"]["endpointurl"] = s3_endpoint
    assert registry.dvc.remote_url() == "s3://models/registry"

    info = registry.register("cancer", models["v1"], data.frame, target="target", version="v1.0.0")
    import boto3

    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="models")["Contents"]}
    model = registry.manifest(info).components["model"]
    assert f"registry/files/md5/{model.md5[:2]}/{model.md5[2:]}" in keys

    shutil.rmtree(git_repo / ".dvc" / "cache")
    shutil.rmtree(git_repo / "bundles" / "cancer")
    assert Registry(git_repo).verify().ok  # hashes the S3 copies
    Registry(git_repo).restore("cancer@v1.0.0")
    assert md5_file(git_repo / "bundles" / "cancer" / "model.skops") == model.md5
