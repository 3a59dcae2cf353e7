"""A local Supabase Storage on 127.0.0.1 for ``growthloop report --upload`` (aiohttp, random port).

It answers what the ``supabase`` client's storage3 sends, under ``/storage/v1`` as a Supabase
project does, with the shapes of Supabase Storage's own routes and errors (supabase/storage:
src/http/routes/bucket, routes/object, src/internal/errors):

- ``POST /bucket`` (``{id, name, public}`` -> ``{name}``), ``GET /bucket/{id}`` (the bucket);
- ``POST /object/{bucket}/{path}``: a multipart upload (field ``file``, its content type kept;
  ``x-upsert`` to overwrite) -> ``{Key, Id}``;
- ``GET /object/info/{bucket}/{path}``: the object's info;
- ``POST /object/sign/{bucket}/{path}`` (``{expiresIn}``) -> ``{signedURL:
  "/object/sign/{bucket}/{path}?token=JWT"}``; the token is an HS256 JWT ``{url, iat, exp}``
  signed with the project's JWT secret;
- ``GET /object/sign/{bucket}/{path}?token=...[&download=name]``: no key needed (the link is
  the credential); the token is checked (signature, ``exp`` against the server's clock, the
  path it was made for) and the object served, ``text/html`` as ``text/plain`` as Supabase
  does, ``Content-Disposition: attachment`` when ``download`` is given.

Authentication as Supabase's: every other request carries ``apikey`` and ``Authorization: Bearer``
with a key, an HS256 JWT signed with the JWT secret whose ``role`` is ``service_role`` or
``anon``. A missing or unknown ``apikey`` is the gateway's 401 ``{"message": ...}``; a bearer
token that does not verify is Storage's InvalidJWT; the anon role may not create buckets or
objects (row-level security). Errors are answered as Storage does: HTTP 400 (500 for 500) with
``{"statusCode": "<real status>", "error", "message"}``.

``advance(delta)`` moves the server's clock (signed URLs expire without waiting).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

JWT_SECRET = "local-storage-jwt-secret-of-at-least-32-bytes"  # HS256 wants >= 32 bytes
PREFIX = "/storage/v1"


def project_key(role: str, secret: str = JWT_SECRET) -> str:
    """A Supabase-style API key: an HS256 JWT with ``role`` (service_role, anon)."""
    now = int(datetime.now(UTC).timestamp())
    payload = {"iss": "supabase", "role": role, "iat": now, "exp": now + 10 * 365 * 86400}
    return jwt.encode(payload, secret, algorithm="HS256")


@dataclass
class StoredObject:
    body: bytes
    content_type: str
    cache_control: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class StorageServer:
    service_key: str = field(default_factory=lambda: project_key("service_role"))
    anon_key: str = field(default_factory=lambda: project_key("anon"))
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    offset: timedelta = timedelta(0)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """What SUPABASE_URL would be: the project's URL."""
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    async def start(self) -> StorageServer:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post(PREFIX + "/bucket", self._create_bucket)
        app.router.add_get(PREFIX + "/bucket/{id}", self._get_bucket)
        app.router.add_post(PREFIX + "/object/sign/{bucket}/{path:.+}", self._sign)
        app.router.add_get(PREFIX + "/object/sign/{bucket}/{path:.+}", self._signed_object)
        app.router.add_get(PREFIX + "/object/info/{bucket}/{path:.+}", self._info)
        app.router.add_post(PREFIX + "/object/{bucket}/{path:.+}", self._upload)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- authentication -------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((request.method, request.path, headers))
        if request.method == "GET" and request.path.startswith(PREFIX + "/object/sign/"):
            return await handler(request)  # the signed link is its own credential
        apikey = headers.get("apikey")
        if not apikey:
            return web.json_response({"message": "No API key found in request"}, status=401)
        if apikey not in {self.service_key, self.anon_key}:
            return web.json_response({"message": "Invalid API key"}, status=401)
        bearer = headers.get("authorization", "")
        if not bearer.startswith("Bearer "):
            return _error(403, "AccessDenied", "Missing authorization header", "Unauthorized")
        try:
            jwt.decode(bearer.removeprefix("Bearer "), JWT_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            return _error(400, "InvalidJWT", str(exc))
        return await handler(request)

    def _may_write(self, request: web.Request) -> web.Response | None:
        """The anon role may not write (Storage's row-level security); the middleware has
        already verified the token."""
        token = request.headers["Authorization"].removeprefix("Bearer ")
        role = jwt.decode(token, JWT_SECRET, algorithms=["HS256"]).get("role")
        if role != "service_role":
            return _error(
                403, "AccessDenied", "new row violates row-level security policy", "Unauthorized"
            )
        return None

    # -- buckets --------------------------------------------------------------------------------

    async def _create_bucket(self, request: web.Request) -> web.Response:
        refused = self._may_write(request)
        if refused is not None:
            return refused
        body = await request.json()
        name = str(body.get("name") or body.get("id") or "")
        bucket_id = str(body.get("id") or name)
        if not name or len(name) > 100:
            return _error(400, "InvalidBucketName", "Bucket name invalid", "Invalid Input")
        if bucket_id in self.buckets:
            return _error(409, "BucketAlreadyExists", "The resource already exists", "Duplicate")
        stamp = self.now().isoformat().replace("+00:00", "Z")
        self.buckets[bucket_id] = {
            "id": bucket_id,
            "name": name,
            "owner": "",
            "public": bool(body.get("public", False)),
            "file_size_limit": body.get("file_size_limit"),
            "allowed_mime_types": body.get("allowed_mime_types"),
            "created_at": stamp,
            "updated_at": stamp,
            "type": "STANDARD",
        }
        return web.json_response({"name": name})

    async def _get_bucket(self, request: web.Request) -> web.Response:
        bucket = self.buckets.get(request.match_info["id"])
        if bucket is None:
            return _no_bucket()
        return web.json_response(bucket)

    # -- objects --------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        refused = self._may_write(request)
        if refused is not None:
            return refused
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        if bucket not in self.buckets:
            return _no_bucket()
        upsert = request.headers.get("x-upsert", "false").lower() == "true"
        if (bucket, path) in self.objects and not upsert:
            return _error(409, "KeyAlreadyExists", "The resource already exists", "Duplicate")
        body, content_type, cache_control = b"", "application/octet-stream", "no-cache"
        reader = await request.multipart()
        async for part in reader:
            if not hasattr(part, "name"):
                continue
            if part.name == "file":
                body = await part.read()  # type: ignore[union-attr]
                content_type = part.headers.get("Content-Type", content_type)
            elif part.name == "cacheControl":
                cache_control = f"max-age={await part.text()}"  # type: ignore[union-attr]
        stored = StoredObject(body=body, content_type=content_type, cache_control=cache_control)
        self.objects[bucket, path] = stored
        return web.json_response({"Key": f"{bucket}/{path}", "Id": stored.id})

    async def _info(self, request: web.Request) -> web.Response:
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        stored = self.objects.get((bucket, path))
        if stored is None:
            return _error(404, "NoSuchKey", "Object not found", "not_found")
        return web.json_response(
            {
                "id": stored.id,
                "name": path,
                "bucket_id": bucket,
                "size": len(stored.body),
                "content_type": stored.content_type,
                "cache_control": stored.cache_control,
            }
        )

    async def _sign(self, request: web.Request) -> web.Response:
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        body = await request.json()
        try:
            expires_in = int(body["expiresIn"])  # storage3 sends a string; Storage coerces
        except (KeyError, TypeError, ValueError):
            return _error(400, "InvalidRequest", "body must have required property 'expiresIn'")
        if expires_in < 1:
            return _error(400, "InvalidRequest", "body/expiresIn must be >= 1")
        if bucket not in self.buckets:
            return _no_bucket()
        if (bucket, path) not in self.objects:
            return _error(404, "NoSuchKey", "Object not found", "not_found")
        iat = int(self.now().timestamp())
        token = jwt.encode(
            {"url": f"{bucket}/{path}", "iat": iat, "exp": iat + expires_in},
            JWT_SECRET,
            algorithm="HS256",
        )
        return web.json_response({"signedURL": f"/object/sign/{bucket}/{path}?token={token}"})

    async def _signed_object(self, request: web.Request) -> web.Response:
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        token = request.query.get("token")
        if not token:
            return _error(400, "InvalidRequest", "querystring must have required property 'token'")
        try:
            claims = jwt.decode(
                token, JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False}
            )
        except jwt.PyJWTError as exc:
            return _error(400, "InvalidJWT", str(exc))
        if int(claims.get("exp", 0)) <= int(self.now().timestamp()):
            return _error(400, "InvalidJWT", "jwt expired")  # jsonwebtoken's message
        if claims.get("url") != f"{bucket}/{path}":
            return _error(400, "InvalidSignature", "The url do not match the signature")
        stored = self.objects.get((bucket, path))
        if stored is None:
            return _error(404, "NoSuchKey", "Object not found", "not_found")
        headers = {
            # Storage's renderer: HTML is never served as HTML
            "Content-Type": "text/plain"
            if "text/html" in stored.content_type
            else stored.content_type,
            "Expires": datetime.fromtimestamp(int(claims["exp"]), UTC).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            ),
        }
        download = request.query.get("download")
        if download is not None:
            headers["Content-Disposition"] = (
                f"attachment; filename={download}; filename*=UTF-8''{download};"
                if download
                else "attachment;"
            )
        return web.Response(body=stored.body, headers=headers)


def _error(status: int, code: str, message: str, error: str | None = None) -> web.Response:
    """Storage's error answer: HTTP 400 (500 stays 500), the real status in the body."""
    return web.json_response(
        {"statusCode": str(status), "code": code, "error": error or code, "message": message},
        status=500 if status == 500 else 400,
    )


def _no_bucket() -> web.Response:
    return _error(404, "NoSuchBucket", "Bucket not found", "Bucket not found")
