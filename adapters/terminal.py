"""The terminal as a channel: each line typed is an inbound message, each reply is printed.

It speaks only in Inbound/Outbound/Decision, like every other adapter; the handler it is given
runs the pipeline. Whatever it prints that came from a customer or from content passes through
`printable` first: an escape sequence in a message or an answer must not recolour, retitle or
clear the operator's terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import suppress
from typing import TextIO

from bot.domain.clock import Clock
from bot.domain.messages import Action, Decision, Inbound, Outbound
from bot.pipeline.intake import printable

CHANNEL = "terminal"
_DIM, _BOLD, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"


class TerminalSender:
    def __init__(self, out: TextIO, color: bool) -> None:
        self._out = out
        self._color = color

    def send(self, message: Outbound) -> None:
        prefix = f"{_BOLD}bot>{_RESET} " if self._color else "bot> "
        body = printable(message.text).replace("\n", "\n     ")
        with suppress(BrokenPipeError):
            # The reader has gone (`bot chat | head`): no resend could ever reach it, so this is
            # not a failed delivery; the chat loop stops at its next line of output.
            print(prefix + body, file=self._out, flush=True)


def explain(decision: Decision | None) -> str:
    """One short line of why: intent, score, FAQ entry, open/closed, handoff."""
    if decision is None:
        return "error: see the log"
    parts = [decision.action.value]
    parts.append(f"intent {decision.intent or 'none'} {decision.intent_score:.2f}")
    if decision.faq_id and decision.picked:
        parts.append(f"faq {decision.faq_id} (suggestion {decision.picked} picked)")
    elif decision.faq_id:
        parts.append(f"faq {decision.faq_id} {decision.faq_score:.2f}")
    elif decision.faq_score:
        parts.append(f"best faq score {decision.faq_score:.2f}")
    if decision.suggestions:
        parts.append("suggested " + ", ".join(decision.suggestions))
    if decision.action not in (Action.DUPLICATE, Action.SILENT):
        parts.append("open" if decision.is_open else "closed")
    if decision.notice:
        parts.append("after-hours notice")
    if decision.action == Action.HANDOFF:
        priority = decision.priority.value if decision.priority else "?"
        parts.append(f"ticket #{decision.ticket_id} → {decision.queue}/{priority}")
    elif decision.action == Action.SILENT:
        parts.append(decision.reasons[-1] if decision.reasons else "")
    return " · ".join(p for p in parts if p)


def chat(
    handle: Callable[[Inbound], Decision | None],
    clock: Clock,
    *,
    user: str,
    stdin: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    color: bool | None = None,
    why: bool = True,
) -> int:
    """Read lines until EOF or /quit; returns the number of messages handled."""
    interactive = stdin.isatty()
    color = out.isatty() if color is None else color
    if interactive:
        print("Type a message. /new starts over as a new customer, /quit leaves.", file=out)
    customer, customers, handled = user, 1, 0
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            break
        text = printable(line).strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/new":
            customers += 1
            customer = f"{user}-{customers}"
            print(f"(now chatting as a new customer: {printable(customer)})", file=out)
            continue
        if not interactive:
            print(f"you> {text}", file=out)
        handled += 1
        inbound = Inbound(
            channel=CHANNEL,
            external_id=f"{customer}:{handled}:{clock.now().timestamp()}",
            user_id=customer,
            chat_id=customer,
            text=text,
            at=clock.now(),
        )
        decision = handle(inbound)
        if why:
            line_of_why = f"     · {printable(explain(decision))}"
            print(f"{_DIM}{line_of_why}{_RESET}" if color else line_of_why, file=out, flush=True)
    return handled
