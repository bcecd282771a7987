"""One object-store interface for every stage: a local directory or an S3-compatible bucket."""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any


class StoreError(RuntimeError):
    """A store operation failed; the message names the URI."""


def join_key(*parts: str) -> str:
    """Join key parts with '/', ignoring empty parts and duplicate slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class ObjectStore(ABC):
    """Keys are '/'-separated relative paths under the store's root URI."""

    root: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str:
        """Write `data` at `key`; returns the object's full URI."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read the object at `key`; raises FileNotFoundError naming the URI if absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists at `key`."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys under `prefix`, sorted, relative to the store root."""

    @abstractmethod
    def open_read(self, key: str) -> IO[bytes]:
        """A readable binary stream over the object (streams, does not load it whole)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at `key` if present."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The full URI of `key` (a path for local stores, s3://... for S3)."""

    def put_file(self, key: str, path: str | Path) -> str:
        """Upload a local file."""
        return self.put_bytes(key, Path(path).read_bytes())

    def get_file(self, key: str, path: str | Path) -> Path:
        """Download an object to a local file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.get_bytes(key))
        return path

    def put_text(self, key: str, text: str) -> str:
        return self.put_bytes(key, text.encode("utf-8"))

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")

    def put_dir(self, prefix: str, local_dir: str | Path) -> list[str]:
        """Upload every file below `local_dir` under `prefix`."""
        local_dir = Path(local_dir)
        keys = []
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            key = join_key(prefix, path.relative_to(local_dir).as_posix())
            self.put_file(key, path)
            keys.append(key)
        return keys

    def sub(self, prefix: str) -> ObjectStore:
        """A store rooted at `prefix` under this one."""
        return open_store(self.uri(prefix), **self._options())

    def _options(self) -> dict[str, Any]:
        return {}


class LocalStore(ObjectStore):
    """A directory on the local filesystem."""

    def __init__(self, root: str | Path):
        self.base = Path(root).expanduser().resolve()
        self.root = str(self.base)

    def _path(self, key: str) -> Path:
        path = (self.base / key).resolve() if key else self.base
        if self.base != path and self.base not in path.parents:
            raise StoreError(f"key {key!r} escapes the store root {self.root}")
        return path

    def uri(self, key: str = "") -> str:
        return str(self._path(key))

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: readers never see a half-written object
        return str(path)

    def put_file(self, key: str, path: str | Path) -> str:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        return str(dest)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object at {path}")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix)
        if base.is_file():
            return [prefix.strip("/")]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def open_read(self, key: str) -> IO[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object at {path}")
        return path.open("rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store(ObjectStore):
    """An S3-compatible bucket (AWS, MinIO, moto server); credentials from the AWS chain."""

    def __init__(self, uri: str, endpoint_url: str | None = None):
        if not uri.startswith("s3://"):
            raise StoreError(f"not an s3:// URI: {uri!r}")
        rest = uri[len("s3://") :]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise StoreError(f"{uri!r} has no bucket name")
        self.prefix = prefix.strip("/")
        self.root = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self._client = None

    def _options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url}

    @property
    def client(self):
        if self._client is None:
            import boto3  # imported lazily: nothing touches the network at import time

            self._client = boto3.client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put_bytes(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def put_file(self, key: str, path: str | Path) -> str:
        self.client.upload_file(str(path), self.bucket, self._key(key))
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        with self.open_read(key) as body:
            return body.read()

    def open_read(self, key: str) -> IO[bytes]:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise FileNotFoundError(f"no object at {self.uri(key)} ({code})") from None
            raise StoreError(f"reading {self.uri(key)} failed: {code or exc}") from None
        return obj["Body"]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError:
            return False

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_store(uri: str, endpoint_url: str | None = None) -> ObjectStore:
    """The store for `uri`: s3://bucket/prefix, or a local directory path (file:// allowed)."""
    if uri.startswith("s3://"):
        return S3Store(uri, endpoint_url=endpoint_url)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise StoreError(f"unsupported store URI {uri!r}: use a local path or s3://bucket/prefix")
    return LocalStore(uri)


def read_stream(url: str, endpoint_url: str | None = None) -> IO[bytes]:
    """Open any object URL (local path or s3://bucket/key) as a binary stream."""
    if url.startswith("s3://"):
        bucket_and_key = url[len("s3://") :]
        bucket, _, key = bucket_and_key.partition("/")
        return S3Store(f"s3://{bucket}", endpoint_url=endpoint_url).open_read(key)
    if url.startswith("file://"):
        url = url[len("file://") :]
    return open(url, "rb")
