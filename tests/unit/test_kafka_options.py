"""The Kafka client options (TLS, SASL) and topic settings built from TOCSIN_KAFKA_* settings.

No live SASL or TLS broker runs in the suite: these check what every aiokafka client
(producer, consumers, admin) is given, which is where a wrong setting would go astray.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from tocsin.composition.distributed import kafka_security, topic_layout
from tocsin.runtime.kafka import KafkaBus, KafkaSecurity, client_options
from tocsin.runtime.settings import Settings


def options(**settings: object) -> dict[str, object]:
    return client_options(kafka_security(Settings(**settings)))  # type: ignore[arg-type]


def test_the_default_is_plaintext_without_credentials() -> None:
    assert options() == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_passes_the_mechanism_and_the_credentials(mechanism: str) -> None:
    assert options(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="tocsin",
        kafka_sasl_password=SecretStr("s3cret"),
    ) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "tocsin",
        "sasl_plain_password": "s3cret",
    }


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a CA certificate")
    folder = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=tocsin-test-ca", "-keyout", folder / "ca.key", "-out", folder / "ca.crt"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder / "ca.crt"


def test_sasl_ssl_trusts_the_ca_file_given_and_checks_host_names(ca_file: Path) -> None:
    built = options(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="tocsin",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=ca_file,
    )
    context = built.pop("ssl_context")
    assert built == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "tocsin",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "tocsin-test-ca" in str(context.get_ca_certs())


def test_ssl_without_sasl_sends_no_credentials(ca_file: Path) -> None:
    built = options(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file)
    assert set(built) == {"security_protocol", "ssl_context"}


def test_a_sasl_protocol_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="SASL_SSL needs a SASL username and password"):
        options(kafka_security_protocol="SASL_SSL", kafka_sasl_username="tocsin")
    with pytest.raises(ValueError, match="needs a SASL username"):
        KafkaBus("kafka:9092", "x", security=KafkaSecurity(protocol="SASL_PLAINTEXT"))


def test_unknown_protocols_and_mechanisms_are_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError):
        Settings(kafka_security_protocol="TLS")
    with pytest.raises(ValidationError):
        Settings(kafka_sasl_mechanism="GSSAPI")


def test_the_password_is_never_in_the_printed_settings() -> None:
    security = kafka_security(
        Settings(kafka_sasl_username="tocsin", kafka_sasl_password=SecretStr("s3cret"))
    )
    assert "s3cret" not in repr(security)


def test_topics_carry_min_isr_and_retention_in_milliseconds() -> None:
    layout = topic_layout(
        Settings(kafka_partitions=12, kafka_min_insync_replicas=2, kafka_retention_hours=72)
    )
    assert layout.partitions == 12
    assert layout.topic_configs() == {
        "min.insync.replicas": "2",
        "retention.ms": str(72 * 3600 * 1000),
    }
    assert topic_layout(Settings()).topic_configs()["retention.ms"] == "604800000"
