"""Where an end-to-end test's checkpoints live, as a store of named files it can list, read and
overwrite: a folder on the local disk (:class:`Files`) or a prefix of moto's S3 bucket
(:class:`Bucket`). Names are relative to the checkpoint folder."""
from __future__ import annotations

import os

import harness as h
import s3_plugin


class Files:
    """The checkpoint directory (``folder`` of ``tmp``) on the local disk."""

    def __init__(self, tmp, folder: str = "ckpt"):
        self.tmp, self.root = str(tmp), os.path.join(str(tmp), folder)

    def uri(self, name: str) -> str:
        return f"enc+file://{self.root}/{name}" if name else f"enc+file://{self.root}"

    def sibling(self, name: str) -> str:
        return f"enc+file://{self.tmp}/{name}"

    def objects(self) -> dict[str, bytes]:
        return {os.path.relpath(p, self.root): read(p) for p in h.all_files(self.root)}

    def write(self, name: str, data: bytes) -> None:
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)


class Bucket:
    """The checkpoint directory in moto's S3."""

    def __init__(self, endpoint: str, prefix: str):
        self.endpoint, self.prefix = endpoint, prefix
        self.client = s3_plugin.s3_client(endpoint)

    def uri(self, name: str) -> str:
        return f"enc+s3://bucket/{self.prefix}/{name}" if name else f"enc+s3://bucket/{self.prefix}"

    def sibling(self, name: str) -> str:
        return f"enc+s3://bucket/{self.prefix}-{name}"

    def objects(self) -> dict[str, bytes]:
        keys = s3_plugin.list_objects(self.endpoint, f"s3://bucket/{self.prefix}")
        return {k[len(self.prefix) + 1:]: self.client.get_object(Bucket="bucket", Key=k)["Body"].read()
                for k in keys}

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket="bucket", Key=f"{self.prefix}/{name}", Body=data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
