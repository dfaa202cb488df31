"""Handing off by what the customer does, not by the words the shop thought of.

The act model (bot.understanding.acts) says whether a message is an emergency, a complaint, a
report of a problem with the customer's own order, a request for a person or for an action
only staff can take. When it is sure enough, a person takes the case even where the shop's
dozen intent examples did not see it coming. The shop's intents then say which person: the
handoff intent its own model finds likeliest, weighed by how well that intent's act fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.content.config import Config
from bot.content.entries import IntentSpec
from bot.pipeline.knowledge import Knowledge, Reading
from bot.understanding.acts import (
    ACTS,
    COMPLAINT,
    EMERGENCY,
    HUMAN,
    NEEDS_PERSON,
    SMALL_TALK,
    UNRELATED,
)

#: how much an intent's fit with the act counts against the shop model's own probability
FIT_FLOOR = 0.05


@dataclass(frozen=True)
class ActHandoff:
    intent: IntentSpec
    reason: str
    #: an emergency, for the urgent line
    emergency: bool = False


def act_handoff(reading: Reading, knowledge: Knowledge, config: Config) -> ActHandoff | None:
    """The intent to hand off under because of what the message does, or None."""
    settings = config.acts
    if not reading.acts or not settings.enabled:
        return None
    p = dict(zip(ACTS, reading.acts, strict=True))
    handoffs = [i for i in knowledge.intents.values() if i.action == "handoff"]
    if not handoffs:
        return None
    if p[EMERGENCY] >= settings.emergency:
        urgent = knowledge.intents.get(config.guard.urgent_intent) or _of_act(
            handoffs, knowledge, EMERGENCY
        )
        if urgent is not None:
            return ActHandoff(urgent, f"act emergency {p[EMERGENCY]:.2f}", emergency=True)
    person = sum(p[act] for act in NEEDS_PERSON)
    top = reading.matches[0] if reading.matches else None
    faq_sure = top is not None and top.score >= knowledge.faq.thresholds.suggest
    if person < (settings.person_over_faq if faq_sure else settings.person):
        return None
    if faq_sure and top is not None and top.entry.id in knowledge.acts_answered:
        return None  # the shop answers this report or request with a FAQ entry of its own
    # below its own threshold an emergency is not one: the likeliest other act of a person's
    act = max((a for a in NEEDS_PERSON if a != EMERGENCY), key=lambda a: p[a])
    candidates = [i for i in handoffs if knowledge.intent_acts.get(i.name) != EMERGENCY]
    best = max(
        candidates or handoffs,
        key=lambda i: (
            reading.intents.get(i.name, 0.0)
            * (FIT_FLOOR + p.get(knowledge.intent_acts.get(i.name, ""), 0.0))
        ),
    )
    return ActHandoff(best, f"act {act} {p[act]:.2f} (a person's work {person:.2f})")


def _of_act(intents: list[IntentSpec], knowledge: Knowledge, act: str) -> IntentSpec | None:
    return next((i for i in intents if knowledge.intent_acts.get(i.name) == act), None)


def unrelated_act(acts: tuple[float, ...], config: Config) -> bool:
    """The act model is sure the message has nothing to do with any shop."""
    settings = config.acts
    return settings.enabled and bool(acts) and acts[ACTS.index(UNRELATED)] >= settings.unrelated


def asks_for_person(
    acts: tuple[float, ...], intent: IntentSpec | None, knowledge: Knowledge, config: Config
) -> bool:
    """The message asks for a person (转人工, "is anyone there?"), as opposed to handing off
    for what it is about. While a human owns the conversation only this gets the bot to speak
    ("your agent is on it", the queue position): a line that mentions a refund while thanking
    or declining one reads as the refund intent, which hands off, but it asks nobody for
    anything. It asks when the intent it reads as is taken as the act "human", or when the act
    model reads it as one (`acts.person`). Without an act model every handoff intent asks."""
    intent_acts = knowledge.intent_acts
    if not intent_acts:
        return intent is not None
    if intent is not None and intent_acts.get(intent.name) == HUMAN:
        return True
    settings = config.acts
    return settings.enabled and bool(acts) and acts[ACTS.index(HUMAN)] >= settings.person


def complaint_act(acts: tuple[float, ...], config: Config) -> bool:
    """The act model reads the message as a complaint at `acts.person` or more, whatever it
    names ("都半小时了还没人回复"): while a human owns the conversation, a complaint about the
    wait."""
    settings = config.acts
    return settings.enabled and bool(acts) and acts[ACTS.index(COMPLAINT)] >= settings.person


def off_topic(acts: tuple[float, ...], config: Config) -> bool:
    """The act model reads the message as small talk or as nothing to do with any shop ("tell
    me a joke"), the two together at `acts.person` or more: not understanding it is no sign
    that the customer needs a person."""
    settings = config.acts
    if not (settings.enabled and acts):
        return False
    return acts[ACTS.index(SMALL_TALK)] + acts[ACTS.index(UNRELATED)] >= settings.person


def person_intent(knowledge: Knowledge) -> IntentSpec | None:
    """The shop's intent for asking for a person (the one taken as the act "human" that hands
    off), to hand off under when the customer pressed the button for one."""
    taken = knowledge.intent_acts
    return next(
        (
            spec
            for name, spec in knowledge.intents.items()
            if spec.action == "handoff" and taken.get(name) == HUMAN
        ),
        None,
    )
