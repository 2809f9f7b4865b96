"""One account of every finished request.

Every request an API endpoint takes produces exactly one `RequestRecord`: when a JSON
answer leaves, when an error answer leaves (auth, validation, limits and upstream failures
alike), and for a stream when it ends, fails mid-way or the client leaves. Records are
appended to a batch on the request path (no I/O, no awaiting) and a background task hands
each batch to the registered *sinks*: budget settlement and the spend ledger, the request
log, generation records, spans and metrics.

An endpoint uses it in three steps:

    account = services.accounts.open(request, "chat.completions")  # first thing
    ...                                    # account.caller / model / admission as known
    account.succeeded(metadata, usage)     # or raise: the error handler calls failed()

and for a stream, `account.stream_ended(...)` from the stream's last `finally`.
"""

from gateway.accounting.book import Accounts, Sink
from gateway.accounting.record import Admitted, RequestAccount, RequestRecord

__all__ = ["Accounts", "Admitted", "RequestAccount", "RequestRecord", "Sink"]
