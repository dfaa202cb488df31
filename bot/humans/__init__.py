"""The human side: tickets in queues, what agents do to them (claim, reply, transfer, resolve),
what the customer is told while waiting, satisfaction surveys after service, and the read
models the agent console shows."""
