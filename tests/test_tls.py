"""Native TLS (issue 16): ``brokkr serve --tls-cert/--tls-key`` and the clients trusting a CA.

A throwaway CA and a server certificate for 127.0.0.1/localhost are made here with
``cryptography``; one ``brokkr serve`` over TLS (SQLite) serves the module. Covers: HTTPS
answers and plain HTTP on the same port gets no answer; the TLS settings' both-or-neither rule
(settings and flags, exit 2) and an unreadable certificate (exit 1, naming the file); the Python
client (async and sync) with ``verify=<CA bundle>`` works and without it fails at once with
``BrokkrCertificateError`` naming the problem, the live stream (WSS) likewise; the CLI with
``--ca-bundle`` or ``BROKKR_CA_BUNDLE`` works (``whoami``, ``stacks logs --follow`` over WSS) and
without them exits 1 naming the certificate problem and the fix; the agent with
``BROKKR__AGENT__CA_BUNDLE`` finds itself, heartbeats, brings its channel Up (seen by the broker)
and applies a deployment object to the fake kube-apiserver, and without it stays unready with
``/health`` and its log naming the certificate error.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from brokkr.broker import settings as broker_settings
from brokkr.broker.domain import paks
from brokkr.client import AsyncBrokkrClient, BrokkrCertificateError, BrokkrClient, NotFound
from brokkr.common.settings import SettingsError
from tests.agent.waiting import eventually
from tests.cli.serving import BROKKR, HOST, STOP_TIMEOUT, environment, free_port, run_cli
from tests.fakes.kube_apiserver import FakeKubeApiServer

DEADLINE = 20.0
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: over-tls
  namespace: default
data:
  k: v
"""


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> Pki:
    """A CA and a server certificate it signed for 127.0.0.1 and localhost (PEM files), with
    the extensions strict verifiers require (key identifiers, critical basic constraints)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("brokkr test CA"))
        .issuer_name(_name("brokkr test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=directory / "ca.pem", cert=directory / "broker.crt", key=directory / "broker.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key.chmod(0o600)
    return pki


@dataclass
class TlsBroker:
    url: str
    admin_pak: str
    pki: Pki
    root: Path

    def admin(self) -> AsyncBrokkrClient:
        return AsyncBrokkrClient(self.url, self.admin_pak, verify=str(self.pki.ca))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    root = tmp_path_factory.mktemp("tls-broker")
    pki = make_pki(root)
    port, pak = free_port(), paks.generate().plaintext
    output = root / "serve.out"
    env = environment(
        root / "data", {"BROKKR__BROKER__ADMIN_PAK": pak, "BROKKR__LOG__LEVEL": "warning"}
    )
    command = [BROKKR, "serve", "--host", HOST, "--port", str(port)]
    command += ["--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    with output.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    broker = TlsBroker(f"https://localhost:{port}", pak, pki, root)
    try:
        _wait_ready(process, broker, output)
        yield broker
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], broker: TlsBroker, output: Path) -> None:
    trust = ssl.create_default_context(cafile=broker.pki.ca)
    with httpx.Client(base_url=broker.url, verify=trust, timeout=2.0) as http:
        for _ in range(int(DEADLINE * 10)):
            assert process.poll() is None, output.read_text()
            try:
                if http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"TLS broker not ready:\n{output.read_text()}")


# --- the broker -----------------------------------------------------------------------------


async def test_serve_with_a_certificate_answers_https_and_not_plain_http(
    tls_broker: TlsBroker,
) -> None:
    trust = ssl.create_default_context(cafile=tls_broker.pki.ca)
    async with httpx.AsyncClient(verify=trust) as http:
        answer = await http.get(f"{tls_broker.url}/healthz")
        assert answer.status_code == 200
        assert answer.url.scheme == "https"
        with pytest.raises(httpx.TransportError):
            await http.get(tls_broker.url.replace("https://", "http://") + "/healthz")


@pytest.mark.parametrize(
    "environ",
    [
        {"BROKKR__BROKER__TLS_CERT_FILE": "/tls/broker.crt"},
        {"BROKKR__BROKER__TLS_KEY_FILE": "/tls/broker.key"},
    ],
)
def test_tls_settings_need_both_files(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="tls_cert_file and broker.tls_key_file"):
        broker_settings.load(environ=environ)


def test_serve_refuses_half_a_tls_pair_and_an_unreadable_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    env = environment(tmp_path / "data")
    half = run_cli("serve", "--port", str(free_port()), "--tls-cert", str(pki.cert), env=env)
    assert half.returncode == 2
    assert "both --tls-cert and --tls-key" in half.stderr

    missing = tmp_path / "missing.crt"
    args = ["serve", "--port", str(free_port()), "--tls-cert", str(missing)]
    unreadable = run_cli(*args, "--tls-key", str(pki.key), env=env)
    assert unreadable.returncode == 1
    assert f"cannot read the TLS certificate file {missing}" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr

    # The key of another certificate: the pair is checked before serving.
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other")
    mismatch = run_cli(*args[:-1], str(pki.cert), "--tls-key", str(other.key), env=env)
    assert mismatch.returncode == 1
    assert "key matching the certificate" in mismatch.stderr


# --- the Python client ----------------------------------------------------------------------


async def test_client_trusts_the_given_ca_bundle_and_refuses_without_it(
    tls_broker: TlsBroker,
) -> None:
    async with tls_broker.admin() as trusted:
        assert (await trusted.auth.whoami()).admin

    started = time.monotonic()
    async with AsyncBrokkrClient(tls_broker.url, tls_broker.admin_pak) as untrusted:
        with pytest.raises(BrokkrCertificateError, match="certificate was not accepted: "):
            await untrusted.auth.whoami()
    # Not retried: an untrusted certificate stays untrusted.
    assert time.monotonic() - started < 1.0

    with BrokkrClient(tls_broker.url, tls_broker.admin_pak, verify=str(tls_broker.pki.ca)) as sync:
        assert sync.auth.whoami().admin


async def _new_stack(admin: AsyncBrokkrClient) -> uuid.UUID:
    generator = await admin.generators.create(name=f"gen-{uuid.uuid4().hex[:10]}")
    stack = await admin.stacks.create(
        name=f"tls-{uuid.uuid4().hex[:10]}", generator_id=generator.generator.id
    )
    return stack.id


async def _live_subscribers(admin: AsyncBrokkrClient, count: int) -> None:
    async def reached() -> bool:
        return (await admin.agents.connections()).live_subscribers == count

    await eventually(reached, timeout=DEADLINE, what=f"{count} live subscriber(s)")


async def test_live_stream_runs_over_wss_with_the_ca_and_is_refused_without(
    tls_broker: TlsBroker,
) -> None:
    async with tls_broker.admin() as admin:
        stack_id = await _new_stack(admin)
        async with AsyncBrokkrClient(tls_broker.url, tls_broker.admin_pak) as untrusted:
            with pytest.raises(BrokkrCertificateError, match="certificate was not accepted"):
                await anext(untrusted.stacks.live(stack_id))

        async def follow() -> None:
            async for _frame in admin.stacks.live(stack_id):
                pass

        following = asyncio.create_task(follow())
        await _live_subscribers(admin, 1)
        await admin.stacks.delete(stack_id)
        # The broker ends the subscribed stream with its stack-deleted close code.
        with pytest.raises(NotFound, match="the stack was deleted"):
            await asyncio.wait_for(following, DEADLINE)


# --- the CLI --------------------------------------------------------------------------------


def _cli_env(broker: TlsBroker, **extra: str) -> dict[str, str]:
    env = environment(broker.root / "cli-data", extra)
    env.update(BROKKR_URL=broker.url, BROKKR_PAK=broker.admin_pak)
    env["BROKKR_CONFIG_DIR"] = str(broker.root / "cli-config")
    return env


def test_cli_trusts_ca_bundle_option_and_environment_and_refuses_without(
    tls_broker: TlsBroker,
) -> None:
    ca = str(tls_broker.pki.ca)
    by_option = run_cli("--ca-bundle", ca, "whoami", "-q", env=_cli_env(tls_broker))
    assert (by_option.returncode, by_option.stdout.strip()) == (0, "admin"), by_option.stderr

    by_env = run_cli("whoami", "-q", env=_cli_env(tls_broker, BROKKR_CA_BUNDLE=ca))
    assert (by_env.returncode, by_env.stdout.strip()) == (0, "admin"), by_env.stderr

    refused = run_cli("whoami", env=_cli_env(tls_broker))
    assert refused.returncode == 1
    assert "the broker's TLS certificate was not accepted" in refused.stderr
    assert "unable to get local issuer certificate" in refused.stderr
    assert "--ca-bundle FILE" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_cli_follows_stack_logs_over_wss_with_the_ca_bundle(tls_broker: TlsBroker) -> None:
    async with tls_broker.admin() as admin:
        stack_id = await _new_stack(admin)
        output = tls_broker.root / f"follow-{stack_id}.out"
        env = _cli_env(tls_broker, BROKKR_CA_BUNDLE=str(tls_broker.pki.ca))
        with output.open("wb") as out:
            follow = subprocess.Popen(
                [BROKKR, "stacks", "logs", str(stack_id), "--follow"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            await _live_subscribers(admin, 1)
            await admin.stacks.delete(stack_id)
            code = await asyncio.to_thread(follow.wait, DEADLINE)
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait()
    assert code == 1
    assert "the stack was deleted" in output.read_text()


# --- the agent ------------------------------------------------------------------------------


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    health_port: int
    output: Path

    async def health(self) -> dict[str, object] | None:
        try:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://{HOST}:{self.health_port}/health", timeout=2.0)
        except httpx.TransportError:
            return None
        found: dict[str, object] = answer.json()
        return found

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubeApiServer]:
    async with FakeKubeApiServer() as server:
        yield server


@dataclass(frozen=True)
class Registered:
    """An ACTIVE agent of cluster ``tls`` and a stack it targets."""

    name: str
    pak: str
    agent_id: uuid.UUID
    stack_id: uuid.UUID


@pytest.fixture
async def registered(tls_broker: TlsBroker) -> Registered:
    async with tls_broker.admin() as admin:
        name = f"edge-{uuid.uuid4().hex[:8]}"
        created = await admin.agents.create(name=name, cluster_name="tls")
        await admin.agents.activate(created.agent.id)
        stack_id = await _new_stack(admin)
        await admin.agents.add_target(created.agent.id, stack_id)
    return Registered(name, created.initial_pak, created.agent.id, stack_id)


def _run_agent(broker: TlsBroker, kubeconfig: Path, name: str, pak: str, **settings: str) -> Agent:
    port = free_port()
    section = {
        "BROKER_URL": broker.url,
        "PAK": pak,
        "AGENT_NAME": name,
        "CLUSTER_NAME": "tls",
        "POLLING_INTERVAL": "1",
        "BACKOFF_MIN": "0.1",
        "BACKOFF_MAX": "0.5",
        "MAX_RETRIES": "1000",
        "HEALTH_HOST": HOST,
        "HEALTH_PORT": str(port),
        "KUBECONFIG_PATH": str(kubeconfig),
        "SHUTDOWN_GRACE_SECONDS": "2",
        **settings,
    }
    env = environment(broker.root)
    del env["BROKKR__DATA_DIR"]  # the broker's, not the agent's
    env.update({f"BROKKR__AGENT__{key}": value for key, value in section.items()})
    output = broker.root / f"agent-{port}.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [BROKKR, "agent", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Agent(process, port, output)


def _stop(agent: Agent) -> None:
    if agent.process.poll() is None:
        agent.process.send_signal(signal.SIGTERM)
        try:
            agent.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            agent.process.kill()
            agent.process.wait()


async def test_agent_with_the_ca_bundle_connects_rest_and_channel_and_applies(
    tls_broker: TlsBroker,
    kube: FakeKubeApiServer,
    registered: Registered,
    tmp_path: Path,
) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    ca = str(tls_broker.pki.ca)
    agent = _run_agent(tls_broker, kubeconfig, registered.name, registered.pak, CA_BUNDLE=ca)
    try:

        async def channel_up() -> bool:
            health = await agent.health()
            broker = health["broker"] if health else {}
            assert isinstance(broker, dict)
            return broker.get("connected") is True and broker.get("channel") == "Up"

        await eventually(channel_up, timeout=DEADLINE, what=f"channel Up:\n{agent.log()}")
        async with tls_broker.admin() as admin:
            connected = await admin.agents.connections()
            assert registered.agent_id in {c.agent_id for c in connected.connections}
            found = await admin.agents.search(name=registered.name, cluster_name="tls")
            assert found.last_heartbeat is not None
            await admin.stacks.deploy(registered.stack_id, CONFIGMAP)

        await eventually(
            lambda: "over-tls" in kube.names("ConfigMap", "default"),
            timeout=DEADLINE,
            what="the ConfigMap applied",
        )
    finally:
        _stop(agent)


async def test_agent_without_the_ca_bundle_names_the_certificate_error(
    tls_broker: TlsBroker,
    kube: FakeKubeApiServer,
    registered: Registered,
    tmp_path: Path,
) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    agent = _run_agent(tls_broker, kubeconfig, registered.name, registered.pak)
    try:

        async def refused() -> dict[str, object] | None:
            health = await agent.health()
            broker = health["broker"] if health else {}
            assert isinstance(broker, dict)
            return broker if "certificate" in str(broker.get("error", "")) else None

        broker = await eventually(refused, timeout=DEADLINE, what="a certificate error")
        assert broker["connected"] is False
        assert broker.get("channel") != "Up"
        assert "unable to get local issuer certificate" in str(broker["error"])
        log = agent.log()
        assert "the broker's TLS certificate was not accepted" in log
        assert "BROKKR__AGENT__CA_BUNDLE" in log
        assert agent.process.poll() is None  # it keeps trying: the CA may be mounted later
    finally:
        _stop(agent)
