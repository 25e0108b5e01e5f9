"""
The server's TLS material: a local CA and a server certificate, made with ``trustme``.

The provider hard-codes ``https://`` for every dbt Cloud URL, so the local server must speak TLS and
clients must trust it. The CA is generated once and persisted in ``<data-dir>/tls/`` so that
restarting the server (or reissuing the server certificate for new host names) never invalidates a
``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` that clients already point at.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import trustme

log = logging.getLogger(__name__)

DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsPaths:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    #: What clients should trust: the public CAs (certifi) plus the local CA. Pointing
    #: REQUESTS_CA_BUNDLE/SSL_CERT_FILE here keeps every other HTTPS call working, including a real
    #: dbt Cloud account configured while these variables are still set.
    client_bundle: Path


def tls_paths(data_dir: Path) -> TlsPaths:
    tls_dir = data_dir / "tls"
    return TlsPaths(
        ca_cert=tls_dir / "ca.pem",
        server_cert=tls_dir / "server.pem",
        server_key=tls_dir / "server-key.pem",
        client_bundle=tls_dir / "ca-bundle.pem",
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only (private keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _normalise(names: list[str] | tuple[str, ...]) -> list[str]:
    unique: list[str] = []
    for name in (*DEFAULT_HOSTNAMES, *names):
        try:
            name = str(ipaddress.ip_address(name))
        except ValueError:
            name = name.lower()
        if name not in unique:
            unique.append(name)
    return unique


def ensure_certificates(data_dir: Path, extra_hostnames: tuple[str, ...] = ()) -> TlsPaths:
    """
    Create the CA and server certificate on first use; reuse them afterwards.

    The server certificate is reissued (from the same CA) when the configured host names change.
    """
    paths = tls_paths(data_dir)
    paths.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    ca_key_path = paths.ca_cert.with_name("ca-key.pem")
    names_path = paths.ca_cert.with_name("server-names.json")
    hostnames = _normalise(extra_hostnames)

    if paths.ca_cert.exists() and ca_key_path.exists():
        ca = trustme.CA.from_pem(paths.ca_cert.read_bytes(), ca_key_path.read_bytes())
    else:
        log.info("Creating a local certificate authority in %s", paths.ca_cert.parent)
        ca = trustme.CA(organization_name="dbt_cloud_local", organization_unit_name="local dbt Cloud CA")
        _write_private(ca_key_path, ca.private_key_pem.bytes())
        paths.ca_cert.write_bytes(ca.cert_pem.bytes())
        names_path.unlink(missing_ok=True)

    current = json.loads(names_path.read_text()) if names_path.exists() else None
    if current != hostnames or not paths.server_cert.exists() or not paths.server_key.exists():
        log.info("Issuing the server certificate for %s", ", ".join(hostnames))
        leaf = ca.issue_cert(*hostnames, common_name=hostnames[0])
        paths.server_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        _write_private(paths.server_key, leaf.private_key_pem.bytes())
        names_path.write_text(json.dumps(hostnames))
    _write_client_bundle(paths)
    return paths


def _write_client_bundle(paths: TlsPaths) -> None:
    """Public CAs plus the local CA, rewritten atomically at every start (certifi may have moved on)."""
    import certifi

    bundle = Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + paths.ca_cert.read_bytes()
    temporary = paths.client_bundle.with_suffix(".tmp")
    temporary.write_bytes(bundle)
    os.replace(temporary, paths.client_bundle)


def client_env_lines(client_bundle: Path) -> list[str]:
    """The ``export`` lines clients need: requests (sync hook) and aiohttp (async hook/triggerer)."""
    return [
        f"export REQUESTS_CA_BUNDLE={client_bundle}",
        f"export SSL_CERT_FILE={client_bundle}",
    ]
