"""The TLS context every connection to the broker uses (REST, live streams, the agent channel).

One builder, so a CA bundle given once is trusted by HTTPS and WSS alike. httpx deprecates
``verify=<path>`` and ``cert=``; building the context here keeps them working without warnings.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi

from brokkr.client import errors

# True: trusted system CAs; False: no verification (testing only); a path: a CA bundle file
# (PEM) or a directory of hashed CA certificates; or a ready context.
Verify = bool | str | ssl.SSLContext
Cert = str | tuple[str, str] | None


def context(verify: Verify = True, cert: Cert = None) -> ssl.SSLContext:
    """The client-side context for ``verify`` and an optional client certificate ``cert``
    (a PEM path holding certificate and key, or (certificate, key) paths). A file that cannot
    be read or is not PEM raises ``BrokkrError`` naming it."""
    try:
        return _build(verify, cert)
    except (OSError, ssl.SSLError) as exc:
        files = [verify] if isinstance(verify, str) else []
        files += [cert] if isinstance(cert, str) else list(cert or ())
        raise errors.BrokkrError(
            f"cannot load the TLS file(s) {', '.join(files)}: {exc.strerror or exc}"
        ) from exc


def _build(verify: Verify, cert: Cert) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        built = verify
    elif verify is False:
        built = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        built.check_hostname = False
        built.verify_mode = ssl.CERT_NONE
    elif verify is True:
        # The system store (and SSL_CERT_FILE / SSL_CERT_DIR), so a company CA installed on the
        # host is trusted; plus certifi's bundle, for hosts and slim images without one.
        built = ssl.create_default_context()
        built.load_verify_locations(cafile=certifi.where())
    elif Path(verify).is_dir():
        built = ssl.create_default_context(capath=verify)
    else:
        built = ssl.create_default_context(cafile=verify)
    if isinstance(cert, str):
        built.load_cert_chain(cert)
    elif cert is not None:
        built.load_cert_chain(*cert)
    return built


def certificate_problem(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (its cause chain), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe(problem: ssl.SSLCertVerificationError) -> str:
    """What was wrong with the broker's certificate, in OpenSSL's words without the C file."""
    return problem.verify_message or problem.reason or str(problem)
