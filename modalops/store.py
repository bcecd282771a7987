"""One object-store interface for every stage: a local directory or an S3-compatible bucket."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any


class StoreError(RuntimeError):
    """A store operation failed; the message names the URI."""


# Defaults for the S3 client's retries (StoreConfig.retry_mode / max_attempts describe them).
DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0


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

    def _write_atomically(self, key: str, write) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a temp name of its own per writer: two writers of one key never share a half file
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            write(tmp)
            os.replace(tmp, path)  # atomic: readers see the old object or the new one, whole
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return str(path)

    def put_bytes(self, key: str, data: bytes) -> str:
        return self._write_atomically(key, lambda tmp: tmp.write_bytes(data))

    def put_file(self, key: str, path: str | Path) -> str:
        return self._write_atomically(key, lambda tmp: shutil.copyfile(path, tmp))

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

    def __init__(
        self,
        uri: str,
        endpoint_url: str | None = None,
        retry_mode: str | None = None,
        max_attempts: int | None = None,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
    ):
        if not uri.startswith("s3://"):
            raise StoreError(f"not an s3:// URI: {uri!r}")
        rest = uri[len("s3://") :]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise StoreError(f"{uri!r} has no bucket name")
        self.prefix = prefix.strip("/")
        self.root = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        # explicit argument, else the AWS variables botocore itself reads, else our defaults
        self.retry_mode = retry_mode or os.environ.get("AWS_RETRY_MODE") or DEFAULT_RETRY_MODE
        self.max_attempts = int(
            max_attempts or os.environ.get("AWS_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS
        )
        self.connect_timeout_s = connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S
        self.read_timeout_s = read_timeout_s or DEFAULT_READ_TIMEOUT_S
        self.retries = 0  # retried requests and body reads so far (botocore's and ours)
        self._client = None

    def _options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "retry_mode": self.retry_mode,
            "max_attempts": self.max_attempts,
            "connect_timeout_s": self.connect_timeout_s,
            "read_timeout_s": self.read_timeout_s,
        }

    @property
    def client(self):
        if self._client is None:
            import boto3  # imported lazily: nothing touches the network at import time
            from botocore.config import Config

            config = Config(
                retries={"mode": self.retry_mode, "max_attempts": self.max_attempts},
                connect_timeout=self.connect_timeout_s,
                read_timeout=self.read_timeout_s,
            )
            client = boto3.client("s3", endpoint_url=self.endpoint_url, config=config)
            client.meta.events.register("after-call.s3", self._count_retries)
            self._client = client
        return self._client

    def _count_retries(self, parsed: Any = None, **_: Any) -> None:
        if isinstance(parsed, dict):
            self.retries += int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0))

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
        """The whole object; a body cut off mid-stream (botocore retries only up to the headers)
        is read again, and a length that differs from Content-Length counts as cut off."""
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )
        from botocore.exceptions import (
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )
        from urllib3.exceptions import HTTPError as Urllib3Error

        transient = (
            BotoConnectionError,
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
            Urllib3Error,
            ConnectionError,
        )
        for attempt in range(self.max_attempts):
            try:
                obj = self._get_object(key)
                data = obj["Body"].read()
                expected = obj.get("ContentLength")
                if expected is not None and len(data) != int(expected):
                    raise IncompleteReadError(actual_bytes=len(data), expected_bytes=expected)
                return data
            except transient as exc:
                if attempt + 1 >= self.max_attempts:
                    raise StoreError(
                        f"reading {self.uri(key)} failed after {self.max_attempts} attempts: {exc}"
                    ) from None
                self.retries += 1
                time.sleep(min(0.05 * 2**attempt, 2.0))
        raise AssertionError("unreachable")

    def _get_object(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise FileNotFoundError(f"no object at {self.uri(key)} ({code})") from None
            raise StoreError(f"reading {self.uri(key)} failed: {code or exc}") from None

    def open_read(self, key: str) -> IO[bytes]:
        return self._get_object(key)["Body"]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status >= 500 or status == 429:
                # a server error that outlived the retries is not "absent": saying so would
                # make a caller redo (or skip) work on a guess
                raise StoreError(f"checking {self.uri(key)} failed: {code or exc}") from None
            return False  # 404; 403 is what S3 answers for a missing key without ListBucket

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


def open_store(uri: str, endpoint_url: str | None = None, **s3_options: Any) -> ObjectStore:
    """The store for `uri`: s3://bucket/prefix, or a local directory path (file:// allowed).

    `s3_options` (retry_mode, max_attempts, connect_timeout_s, read_timeout_s) configure the S3
    client's retries; see StoreConfig. A local store ignores them."""
    if uri.startswith("s3://"):
        return S3Store(uri, endpoint_url=endpoint_url, **s3_options)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise StoreError(f"unsupported store URI {uri!r}: use a local path or s3://bucket/prefix")
    return LocalStore(uri)


# read_stream's S3 stores, one per (process, bucket, endpoint): a boto3 client costs 50-120 ms
# to create, more than reading a 2 MB shard; keyed by pid since clients must not cross a fork
_STREAM_STORES: dict[tuple[int, str, str | None], S3Store] = {}


def read_stream(url: str, endpoint_url: str | None = None) -> IO[bytes]:
    """Open any object URL (local path or s3://bucket/key) as a binary stream."""
    if url.startswith("s3://"):
        bucket_and_key = url[len("s3://") :]
        bucket, _, key = bucket_and_key.partition("/")
        where = (os.getpid(), bucket, endpoint_url)
        store = _STREAM_STORES.get(where)
        if store is None:
            store = _STREAM_STORES[where] = S3Store(f"s3://{bucket}", endpoint_url=endpoint_url)
        return store.open_read(key)
    if url.startswith("file://"):
        url = url[len("file://") :]
    return open(url, "rb")
