"""A stand-in Google Cloud Storage over a local folder, for running the
project's real gs:// code paths in tests without a bucket.

`<root>/<bucket>/<object name>` holds each object. Three clients reach it:

* epath (every file but checkpoint arrays), through fsspec's "gcs" protocol,
  which `install` points at `StandInGcs` (what gcsfs would be). Like gcsfs it
  cannot append to an object.
* TensorStore's own GCS driver (Orbax's checkpoint arrays), through
  `JsonApiServer`: the JSON API calls that driver makes (media upload, read
  with ranges and generation conditions, list, delete), served over HTTP on
  127.0.0.1 via $TENSORSTORE_GCS_HTTP_URL.
* `google.cloud.storage`, which Orbax asks whether a bucket has a
  hierarchical namespace: a module that answers no.

Object generations are file modification times in nanoseconds; the server
makes each write's strictly larger than the last, as GCS does.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.machinery
import json
import os
import sys
import threading
import types
import urllib.parse

from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem


class StandInGcs(DirFileSystem):
  """fsspec "gs"/"gcs" filesystem: `gs://bucket/x` is `<root>/bucket/x`."""

  protocol = ("gcs", "gs")
  root = ""  # set by `install`
  cachable = False  # a new root takes effect at once

  def __init__(self, *args, **kwargs):
    super().__init__(path=self.root, fs=LocalFileSystem(auto_mkdir=True))

  @classmethod
  def _strip_protocol(cls, path):
    if isinstance(path, list):
      return [cls._strip_protocol(p) for p in path]
    for prefix in ("gs://", "gcs://"):
      if path.startswith(prefix):
        path = path[len(prefix):]
    return path.rstrip("/")

  def open(self, path, mode="rb", *args, **kwargs):
    if "a" in mode:
      raise NotImplementedError("objects in a bucket cannot be appended to")
    return super().open(path, mode, *args, **kwargs)


class _Store:
  """Objects as files, with GCS generations and conditions."""

  def __init__(self, root: str):
    self.root = root
    self.lock = threading.Lock()
    self.last_generation = 0

  def path(self, bucket: str, name: str) -> str:
    return os.path.join(self.root, bucket, name)

  @staticmethod
  def generation(path: str) -> int:
    return os.stat(path).st_mtime_ns

  def metadata(self, bucket: str, name: str) -> dict:
    path = self.path(bucket, name)
    return {"kind": "storage#object", "bucket": bucket, "name": name,
            "size": str(os.path.getsize(path)), "generation": str(self.generation(path)),
            "metageneration": "1"}

  def write(self, bucket: str, name: str, data: bytes) -> None:
    path = self.path(bucket, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.upload.{threading.get_ident()}"
    with open(partial, "wb") as f:
      f.write(data)
    generation = self.last_generation = max(self.last_generation + 1, os.stat(partial).st_mtime_ns)
    os.utime(partial, ns=(generation, generation))
    os.replace(partial, path)

  def names(self, bucket: str) -> list[str]:
    base = os.path.join(self.root, bucket)
    found = []
    for directory, _, files in os.walk(base):
      for file in files:
        if ".upload." not in file:
          found.append(os.path.relpath(os.path.join(directory, file), base).replace(os.sep, "/"))
    return sorted(found)


class _Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"
  store: _Store

  def log_message(self, *args):
    pass

  def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
    self.send_response(status)
    for key, value in (headers or {}).items():
      self.send_header(key, value)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def _json(self, status: int, value) -> None:
    self._reply(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

  def _body(self) -> bytes:
    if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
      data = b""
      while True:
        size = int(self.rfile.readline().strip().split(b";")[0], 16)
        chunk = self.rfile.read(size)
        self.rfile.readline()
        if size == 0:
          return data
        data += chunk
    return self.rfile.read(int(self.headers.get("Content-Length", 0)))

  def _route(self) -> tuple[list[str], dict]:
    url = urllib.parse.urlparse(self.path)
    return url.path.split("/"), dict(urllib.parse.parse_qsl(url.query))

  def _precondition_fails(self, query: dict, current) -> bool:
    """`current`: the object's generation, or 0 when it does not exist."""
    match = query.get("ifGenerationMatch")
    return match is not None and int(match) != current

  def _current(self, bucket: str, name: str) -> int:
    path = self.store.path(bucket, name)
    return self.store.generation(path) if os.path.isfile(path) else 0

  def do_POST(self):
    parts, query = self._route()
    body = self._body()
    # /upload/storage/v1/b/<bucket>/o?uploadType=media&name=<name>
    if parts[1:5] != ["upload", "storage", "v1", "b"] or query.get("uploadType") != "media":
      return self._json(501, {"error": f"unsupported upload {self.path}"})
    bucket, name = parts[5], query["name"]
    with self.store.lock:
      if self._precondition_fails(query, self._current(bucket, name)):
        return self._json(412, {"error": "precondition failed"})
      self.store.write(bucket, name, body)
      return self._json(200, self.store.metadata(bucket, name))

  def do_GET(self):
    parts, query = self._route()
    # /storage/v1/b/<bucket>/o[/<name>]
    if parts[1:4] != ["storage", "v1", "b"] or len(parts) < 6 or parts[5] != "o":
      return self._json(501, {"error": f"unsupported request {self.path}"})
    bucket = parts[4]
    if len(parts) == 6:
      return self._list(bucket, query)
    name = urllib.parse.unquote("/".join(parts[6:]))
    with self.store.lock:
      current = self._current(bucket, name)
      if not current:
        return self._json(404, {"error": "not found"})
      if self._precondition_fails(query, current):
        return self._json(412, {"error": "precondition failed"})
      not_match = query.get("ifGenerationNotMatch")
      if not_match is not None and int(not_match) == current:
        return self._reply(304, headers={"x-goog-generation": str(current)})
      if query.get("alt") != "media":
        return self._json(200, self.store.metadata(bucket, name))
      with open(self.store.path(bucket, name), "rb") as f:
        data = f.read()
    headers = {"x-goog-generation": str(current), "Content-Type": "application/octet-stream"}
    requested = self.headers.get("Range")
    if requested is None:
      return self._reply(200, data, headers)
    start, _, end = requested.removeprefix("bytes=").partition("-")
    if start == "":  # a suffix: the last `end` bytes
      start, end = max(len(data) - int(end), 0), len(data) - 1
    start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
    if start >= len(data) and len(data):
      return self._reply(416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return self._reply(206, data[start:end + 1], headers)

  def _list(self, bucket: str, query: dict):
    prefix = query.get("prefix", "")
    start, end = query.get("startOffset", ""), query.get("endOffset")
    names = [n for n in self.store.names(bucket)
             if n.startswith(prefix) and n >= start and (end is None or n < end)]
    with self.store.lock:
      items = [self.store.metadata(bucket, n) for n in names
               if os.path.isfile(self.store.path(bucket, n))]
    return self._json(200, {"kind": "storage#objects", "items": items})

  def do_DELETE(self):
    parts, query = self._route()
    bucket, name = parts[4], urllib.parse.unquote("/".join(parts[6:]))
    with self.store.lock:
      current = self._current(bucket, name)
      if not current:
        return self._json(404, {"error": "not found"})
      if self._precondition_fails(query, current):
        return self._json(412, {"error": "precondition failed"})
      os.remove(self.store.path(bucket, name))
    return self._reply(204)


class JsonApiServer:
  """The GCS JSON API over `root`, on 127.0.0.1 in a thread."""

  def __init__(self, root: str):
    handler = type("Handler", (_Handler,), {"store": _Store(root)})
    self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    self._server.daemon_threads = True
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
    self._thread.start()

  @property
  def url(self) -> str:
    return f"http://127.0.0.1:{self._server.server_address[1]}"

  def close(self) -> None:
    self._server.shutdown()
    self._server.server_close()


def _storage_module() -> types.ModuleType:
  """`google.cloud.storage` as far as Orbax asks: no bucket has a
  hierarchical namespace."""
  module = types.ModuleType("google.cloud.storage")
  module.__spec__ = importlib.machinery.ModuleSpec("google.cloud.storage", None)

  class Client:
    def get_bucket(self, name):
      return types.SimpleNamespace(name=name, hierarchical_namespace_enabled=False)

  module.Client = Client
  return module


def install(root: str, monkeypatch) -> JsonApiServer:
  """Points every gs:// client of this process at `root` until `monkeypatch`
  undoes it; returns the server (close it when done)."""
  from etils.epath import backend
  # (`fsspec.registry` names a read-only view; the module's dict is behind it.)
  fsspec_registry = importlib.import_module("fsspec.registry")._registry

  server = JsonApiServer(root)
  monkeypatch.setenv("TENSORSTORE_GCS_HTTP_URL", server.url)
  monkeypatch.setenv("TENSORSTORE_GCS_HTTP_VERSION", "1.1")
  monkeypatch.setenv("GOOGLE_AUTH_TOKEN_FOR_TESTING", "stand-in")
  monkeypatch.setenv("EPATH_USE_TF", "false")  # else epath would use tf.io.gfile
  monkeypatch.setattr(StandInGcs, "root", root)
  for protocol in StandInGcs.protocol:
    monkeypatch.setitem(fsspec_registry, protocol, StandInGcs)
  # epath keeps one filesystem per protocol for the process.
  backend.fsspec_backend._get_filesystem.cache_clear()
  monkeypatch.setitem(sys.modules, "google.cloud.storage", _storage_module())
  if "google.cloud" not in sys.modules:
    cloud = types.ModuleType("google.cloud")
    cloud.__path__ = []
    cloud.__spec__ = importlib.machinery.ModuleSpec("google.cloud", None, is_package=True)
    monkeypatch.setitem(sys.modules, "google.cloud", cloud)
  monkeypatch.setattr(sys.modules["google.cloud"], "storage",
                      sys.modules["google.cloud.storage"], raising=False)
  return server
