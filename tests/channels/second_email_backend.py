"""A second email backend, as a partner's mail service would plug in: chosen by settings alone.

It keeps what it sends in `sent` rather than calling a provider, and it carries its own rule:
it delivers only to addresses on its partner's domain (OPTIONS `domain`).
"""

from apps.channels.base import ChannelBackend, ChannelMessage, ContactPoints, PermanentProviderError, SendResult

# (delivery id, address, subject) of each message sent, oldest first.
sent: list[tuple[str, str, str]] = []


class PartnerMailBackend(ChannelBackend):
    channel = "email"

    def __init__(self, *, domain: str, **options):
        super().__init__(**options)
        self.domain = domain.lower()

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        if contacts.email.lower().endswith(f"@{self.domain}"):
            return ""
        return f"the user has no email address at {self.domain}"

    def send(self, message: ChannelMessage) -> SendResult:
        if not message.email.lower().endswith(f"@{self.domain}"):  # changed since the notification was accepted
            raise PermanentProviderError(f"{message.email!r} is not at {self.domain}.", code="not_partner_domain")
        sent.append((message.delivery_id, message.email, message.content["subject"]))
        return SendResult(provider_message_id=f"partner-{len(sent)}")
