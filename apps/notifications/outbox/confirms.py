"""RabbitMQ's confirms for a round of messages at once, instead of one after each.

py-amqp's confirm mode (`confirm_publish`, notifier/settings/base.py) waits for each message's
confirm before it sends the next: a round trip to RabbitMQ per message, which for a persistent
message includes its write to disk. A round of 20 messages (a broadcast's batch of 1,000 emails
in messages of 50) waited 20 times. Here a round's messages go out one after the other, and the
round then waits once, until RabbitMQ has confirmed every one of them (docs/performance.md).

RabbitMQ numbers the messages of a channel in confirm mode 1, 2, 3… and confirms them one at a
time or `multiple` (each one up to a number), in any order. The numbers are only known if
nothing else publishes on the channel, so the rounds use a channel of their own on each broker
connection, opened by the first round and kept with the connection (in a web process the
background publisher's thread is the one that publishes; a request that publishes itself, when
that thread's queue is full, takes another pooled connection, never the same one at once).

A negative confirm, a broken channel or connection, or no confirm within the timeout fails the
whole round: the caller hands all of it to the sweep, which publishes again what no worker has
claimed (a message confirmed and then republished costs one spare message, which the claim
ignores), and the connection is dropped, so a late confirm is never counted for a later round.
"""

import time

from amqp import spec
from amqp.exceptions import MessageNacked
from kombu import Producer


class ConfirmTimeout(TimeoutError):
    """RabbitMQ did not confirm a round's messages in time (a memory or disk alarm blocks publishers)."""


class _RoundChannel:
    """A channel in confirm mode that only rounds publish on, and what it has published and had confirmed."""

    def __init__(self, connection) -> None:
        self.channel = connection.channel()
        self.channel.confirm_select()
        # Publish without waiting for the confirm (the round waits for all of them in `wait`).
        self.channel.basic_publish = self._publish
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.producer = Producer(self.channel)
        self.published = 0  # RabbitMQ's number for the last message published on this channel
        self.unconfirmed: set[int] = set()
        self.nacked = False

    def _publish(self, *args, confirm_timeout=None, **kwargs):
        result = self.channel._basic_publish(*args, **kwargs)
        self.published += 1
        self.unconfirmed.add(self.published)
        return result

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self.unconfirmed = {number for number in self.unconfirmed if number > delivery_tag}
        else:
            self.unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked = True

    def wait(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.unconfirmed and not self.nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._not_confirmed(timeout)
            try:
                self.channel.wait([spec.Basic.Ack, spec.Basic.Nack], timeout=remaining)
            except TimeoutError as error:  # socket.timeout, from the connection's read
                raise self._not_confirmed(timeout) from error
        if self.nacked:
            raise MessageNacked("RabbitMQ refused a message of the round")

    def _not_confirmed(self, timeout: float) -> ConfirmTimeout:
        return ConfirmTimeout(f"{len(self.unconfirmed)} messages not confirmed within {timeout} s")


def rounds_supported(connection) -> bool:
    """Whether this broker connection confirms publishes (py-amqp's with `confirm_publish`); the
    embedded broker of `make run` (kombu's filesystem transport) does not, and publishes as before."""
    return connection.transport.driver_type == "amqp" and bool(connection.transport_options.get("confirm_publish"))


class ConfirmedRound:
    """Publish with `producer`, then `wait()`: it returns once RabbitMQ confirmed every message the
    round published, and raises otherwise (MessageNacked, ConfirmTimeout, or the broker's error)."""

    def __init__(self, connection) -> None:
        # A pooled connection is opened on first use; one immediate retry, as Celery's publish
        # retry starts (kombu's default would sleep 2 s first, with a broker already refusing).
        connection.ensure_connection(max_retries=1, interval_start=0)
        transport_connection = connection.connection  # py-amqp's
        round_channel = getattr(transport_connection, "_notifier_round_channel", None)
        if round_channel is None or not round_channel.channel.is_open:
            round_channel = _RoundChannel(transport_connection)
            transport_connection._notifier_round_channel = round_channel
        self._round_channel = round_channel
        self.producer = round_channel.producer

    def wait(self, *, timeout: float) -> None:
        self._round_channel.wait(timeout=timeout)
