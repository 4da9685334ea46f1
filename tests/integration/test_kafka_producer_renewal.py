"""The Kafka bus replaces a producer whose sequence numbers the broker refuses.

aiokafka 0.14 fails a batch that expired while its partition had no leader (a broker restarting
under load) after it numbered it, and never gives the numbers back: the broker then refuses
every later batch of that producer to the partition (`OutOfOrderSequenceNumber`), and a service
publishing through it answered 503 / retried for ever after the broker was back (seen in
tests/e2e/test_infra_restarts.py: ingest refused 3,938 posts in a row). Here the same gap is
made without a restart, by advancing the producer's own sequence counters on the real broker.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from schemas import ALERTS_RAW
from tests.integration.test_kafka_bus import read_topic
from tocsin.runtime.bus import PublishError
from tocsin.runtime.kafka import KafkaBus

pytestmark = pytest.mark.kafka

KEYS = [f"key-{n}" for n in range(16)]  # spread over every partition


async def test_a_producer_refused_for_its_sequence_is_replaced_and_publishing_recovers(
    kafka_bootstrap: str, namespace: str
) -> None:
    kafka = KafkaBus(kafka_bootstrap, client_id=f"test-{uuid.uuid4().hex[:6]}", namespace=namespace)
    await kafka.start()
    try:
        await kafka.publish_serialized(ALERTS_RAW, [(k, b'{"n": 0}') for k in KEYS])
        # The gap an expired batch leaves: numbers taken, nothing sent under them.
        wedged = kafka._producer
        assert wedged is not None
        sequences = wedged._txn_manager._sequence_numbers
        for partition in list(sequences):
            sequences[partition] += 3

        with pytest.raises(PublishError, match="OutOfOrderSequenceNumber"):
            await kafka.publish_serialized(ALERTS_RAW, [(k, b'{"n": 1}') for k in KEYS])
        assert kafka.producer_renewals == 1
        assert kafka._producer is not wedged

        # The sender's retry goes through the new producer, and so does everything after.
        await kafka.publish_serialized(ALERTS_RAW, [(k, b'{"n": 1}') for k in KEYS])
        await kafka.publish_serialized(ALERTS_RAW, [(k, b'{"n": 2}') for k in KEYS])
        values = await read_topic(kafka_bootstrap, f"{namespace}{ALERTS_RAW}", 3 * len(KEYS))
        assert sorted(set(values)) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
        assert kafka.producer_renewals == 1
    finally:
        await kafka.stop()


async def test_stopping_during_a_renewal_leaves_no_producer_running(
    kafka_bootstrap: str, namespace: str
) -> None:
    kafka = KafkaBus(kafka_bootstrap, client_id=f"test-{uuid.uuid4().hex[:6]}", namespace=namespace)
    await kafka.start()
    wedged = kafka._producer
    assert wedged is not None
    # A renewal under way (starting its new producer takes a round trip or more) when the
    # process stops: the stop waits for it and stops what it installed.
    renewal = asyncio.create_task(kafka._renew_producer(wedged))
    await asyncio.sleep(0)
    await kafka.stop()
    await renewal
    assert kafka._producer is None
