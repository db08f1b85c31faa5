"""One message to one recipient in two round trips, where the server offers PIPELINING (RFC 2920).

smtplib's `sendmail` waits for the reply to each command: MAIL FROM, RCPT TO, DATA, then the
message, four round trips per email. ESPs' submission endpoints commonly advertise PIPELINING,
which lets a client send MAIL FROM, RCPT TO and DATA together and read the three replies after; the
message and its final reply are the second round trip. Fewer waits for the sending process, and
fewer reads, writes and wake-ups on both ends (measured in docs/performance.md, "The email rate,
one change at a time").

What reaches the server is what `sendmail` would send: the same commands with the same SIZE
option, the message dot-stuffed and ended the same way. A refusal raises the exception `sendmail`
raises for it (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError). Unlike `sendmail`, a
refused transaction closes the session instead of resetting it: after a pipelined group the
server may be waiting for message data, where a RSET or QUIT would be read as text. The backend
discards a session after any refusal anyway (email.py).
"""

import functools
import re
import smtplib

_CRLF = b"\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")


def smtp_pipelining(smtp: smtplib.SMTP) -> bool:
    """Whether the session's server offers PIPELINING (known after its EHLO)."""
    return bool(smtp.does_esmtp and smtp.has_extn("pipelining"))


def smtp_sendmail_pipelined(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """`smtp.sendmail(sender, [recipient], message)` in two round trips; the server must offer PIPELINING."""
    size = f" size={len(message)}" if smtp.has_extn("size") else ""
    commands = f"mail FROM:{_sender_quoted(sender)}{size}\r\nrcpt TO:{recipient_quoted(recipient)}\r\ndata\r\n"
    smtp.send(commands.encode(smtp.command_encoding))
    # Every reply of the group is read, whatever the first ones say: the server answers each.
    (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = (
        smtp.getreply(), smtp.getreply(), smtp.getreply())
    refused: smtplib.SMTPException | None = None
    if mail_code != 250:
        refused = smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    elif rcpt_code not in (250, 251):
        refused = smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_reply)})
    elif data_code != 354:
        refused = smtplib.SMTPDataError(data_code, data_reply)
    if refused is not None:
        smtp.close()  # the server may be reading message data now (see above)
        raise refused
    data = _LEADING_DOT.sub(b"..", message)  # dot-stuffed, as smtplib's data() sends it
    if not data.endswith(_CRLF):
        data += _CRLF
    smtp.send(data + b"." + _CRLF)
    code, reply = smtp.getreply()
    if code != 250:
        smtp.close()
        raise smtplib.SMTPDataError(code, reply)


# The envelope sender is the channel's (a few per process); quoteaddr parses it each time.
_sender_quoted = functools.lru_cache(maxsize=8)(smtplib.quoteaddr)

# A bare address of the usual characters, which quoteaddr would return in angle brackets as it is.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def recipient_quoted(recipient: str) -> str:
    """`smtplib.quoteaddr(recipient)`: the recipient differs on every email, and quoteaddr runs the
    email package's address parser on each (6 µs); a bare address needs only its brackets."""
    if _PLAIN_ADDRESS.fullmatch(recipient):
        return f"<{recipient}>"
    return smtplib.quoteaddr(recipient)
