"""The counters and histogram the service updates as it works. Counters and histograms only:
they add up correctly across processes in prometheus-client's multiprocess mode, where gauges
would need a mode each; what is a level (queue depth) is read from the database instead."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_IN = Counter(
    "bot_messages_in", "Customer messages accepted (retried deliveries not counted)", ["channel"]
)
MESSAGES_OUT = Counter(
    "bot_messages_out",
    "Replies delivered: by the dispatcher, or inline in the channel's own response",
    ["channel", "via"],
)
DECISIONS = Counter("bot_decisions", "What the bot decided per message", ["action"])
PIPELINE_SECONDS = Histogram(
    "bot_pipeline_seconds",
    "From a message's arrival to its decision and replies written",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)
DISPATCH_RETRIES = Counter(
    "bot_dispatch_retries",
    "Sends that will be tried again: the platform asked to wait, or the send failed",
    ["channel", "reason"],
)
DISPATCH_FAILURES = Counter(
    "bot_dispatch_permanent_failures",
    "Replies given up: the customer is unreachable (blocked, window spent) or attempts ran out",
    ["channel", "reason"],
)
REQUESTS_REFUSED = Counter(
    "bot_requests_refused",
    "Requests refused or dropped at the door: a body over its cap, a body too slow, a client or "
    "customer over its rate limit, a replayed push",
    ["route", "reason"],
)
