"""Putting the bot together from config.toml and the content folders: the one assembly that
`bot run`, `bot chat`, `bot eval` and the tests all use."""

from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bot.content.config import ChannelSection, Config, TelegramChannelConfig, load_config
from bot.content.entries import (
    OUT_OF_SCOPE,
    FaqEntry,
    IntentSpec,
    check_forbidden,
    draft_problems,
    read_faq,
    read_intents,
)
from bot.content.languages import missing_languages
from bot.content.problems import Problem, ProblemsError, line_of_key, only_errors, only_warnings
from bot.content.storage_check import storage_problems
from bot.domain.clock import Clock
from bot.hours.schedule import Schedule, read_schedules
from bot.hours.stated import hours_problems
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline, SyncSender
from bot.store.database import Store
from bot.understanding.acts import base_model, intent_acts, learn_acts, why_act
from bot.understanding.acts import corpus as acts_corpus
from bot.understanding.background import Background, builtin_texts
from bot.understanding.compute import one_thread
from bot.understanding.encoders import Encoder, MemoEncoder, make_encoder, model_path
from bot.understanding.faq import FaqIndex, calibration_evidence
from bot.understanding.intents import IntentClassifier
from bot.understanding.third_parties import ThirdParties, builtin_names, common_words

log = logging.getLogger("bot.assembly")


@dataclass(frozen=True)
class Content:
    faq: list[FaqEntry]
    intents: list[IntentSpec]
    schedules: dict[str, Schedule]


def read_content(config: Config) -> tuple[Content, list[Problem]]:
    """The content folders read against the config, with every problem found.

    Warnings (texts missing a language the shop answers in) come last; callers that must refuse
    broken content look at `only_errors` of the problems.
    """
    forbidden = config.texts.forbidden_phrases
    faq, faq_problems = read_faq(config.resolve(config.content.faq), forbidden)
    intents, intent_problems = read_intents(
        config.resolve(config.content.intents), config.queues, forbidden
    )
    schedules, schedule_problems = read_schedules(config.resolve(config.content.schedules))
    problems = faq_problems + intent_problems + schedule_problems
    names = {i.name for i in intents}
    for queue, queue_config in config.queues.items():
        if queue_config.schedule not in schedules and not only_errors(schedule_problems):
            problems.append(
                Problem(
                    config.path,
                    line_of_key(config.path, f"queues.{queue}.schedule"),
                    f"queues.{queue}.schedule: no schedule {queue_config.schedule!r}",
                    f"add schedules/{queue_config.schedule}.toml or use one of: "
                    f"{', '.join(sorted(schedules))}",
                )
            )
    if not intent_problems:
        for key, name in (
            ("intents.faq_intent", config.intents.faq_intent),
            ("guard.urgent_intent", config.guard.urgent_intent),
        ):
            if name not in names:
                problems.append(
                    Problem(
                        config.path,
                        line_of_key(config.path, key),
                        f"{key}: no intent named {name!r}",
                        f"define it in intents/*.yaml or use one of: {', '.join(sorted(names))}",
                    )
                )
    if config.encoder.backend != "use":
        try:
            model_path(config.encoder.model)
        except ValueError as exc:
            problems.append(
                Problem(
                    config.path,
                    line_of_key(config.path, "encoder.model"),
                    str(exc),
                    "name a local model folder or an installed model package",
                )
            )
    for key, text in config.texts.model_dump().items():
        if isinstance(text, dict):
            line = line_of_key(config.path, f"texts.{key}")
            check_forbidden(text, forbidden, config.path, line, problems, f"texts.{key} ")
    for schedule in schedules.values():
        for section, texts in [
            ("notice", schedule.notice),
            ("handoff_notice", schedule.handoff_notice),
            *((f"greetings.{k}", v) for k, v in schedule.greetings.items()),
        ]:
            line = line_of_key(schedule.file, section.split(".")[0])
            check_forbidden(texts, forbidden, schedule.file, line, problems, f"[{section}] ")
    if config.front_schedule in schedules:
        problems += stated_hours_problems(config, faq, intents, schedules)
    problems += missing_languages(config, faq, intents, schedules.values())
    return Content(faq, intents, schedules), problems


def stated_hours_problems(
    config: Config,
    faq: list[FaqEntry],
    intents: list[IntentSpec],
    schedules: dict[str, Schedule],
) -> list[Problem]:
    """Warnings for hours written out in texts for customers that the schedule does not have:
    FAQ answers, intent replies and config texts against the queues' schedules (the one
    customers meet first named), each schedule's notices against itself."""
    front = schedules[config.front_schedule]
    queues = [schedules[q.schedule] for q in config.queues.values() if q.schedule in schedules]
    others = [s for s in queues if s is not front]
    problems: list[Problem] = []
    for entry in faq:
        where = f"the answer of {entry.id}"
        problems += hours_problems(
            entry.answer, front, entry.file, entry.answer_lines, where, others=others
        )
    for intent in intents:
        where, at = f"the reply of {intent.name}", dict.fromkeys(intent.reply, intent.line)
        problems += hours_problems(intent.reply, front, intent.file, at, where, others=others)
    for key, text in config.texts.model_dump().items():
        if isinstance(text, dict):
            lines = {k: line_of_key(config.path, f"texts.{key}.{k}") for k in text}
            problems += hours_problems(
                text, front, config.path, lines, f"texts.{key}", others=others
            )
    for schedule in schedules.values():
        for section, texts in (
            ("notice", schedule.notice),
            ("handoff_notice", schedule.handoff_notice),
        ):
            lines = {k: line_of_key(schedule.file, f"{section}.{k}") for k in texts}
            problems += hours_problems(
                texts, schedule, schedule.file, lines, f"[{section}]", service_only=False
            )
    return problems


def not_faq_examples(content: Content, config: Config) -> list[str]:
    """What the FAQ must not answer, for calibration: small talk and what the shop does not
    handle (handoff and "answer" intents may rightly share words with FAQ entries)."""
    return [
        example
        for intent in content.intents
        if intent.name != config.intents.faq_intent
        and (intent.action == "reply" or intent.name == OUT_OF_SCOPE)
        for example in intent.examples
    ]


def shop_texts(content: Content, config: Config) -> list[str]:
    """Everything the shop wrote about itself: FAQ questions and answers, intent examples and
    replies (not out_of_scope's, which name other companies on purpose) and the config texts.
    A company named here is the shop's business, not someone else's."""
    texts = [text for entry in content.faq for text in (*entry.questions, *entry.answer.values())]
    texts += [
        text
        for intent in content.intents
        if intent.name != OUT_OF_SCOPE
        for text in (*intent.examples, *intent.reply.values())
    ]
    for name in type(config.texts).model_fields:
        value = getattr(config.texts, name)
        if isinstance(value, dict):  # a LocalText; forbidden_phrases are not the shop's words
            texts += value.values()
    return texts


def calibration_problems(content: Content, config: Config) -> list[Problem]:
    """Warnings for a calibration that will have too little evidence (`bot check`)."""
    folder = config.resolve(config.content.faq)
    return [
        Problem(folder, None, weakness, fix, severity="warning")
        for weakness, fix in calibration_evidence(
            content.faq, len(not_faq_examples(content, config))
        )
    ]


def check(config_path: Path) -> list[Problem]:
    """Every problem in config.toml and the content folders, all at once (`bot check`)."""
    try:
        config = load_config(config_path)
    except ProblemsError as exc:
        return exc.problems
    # a secret missing here may be set where the service runs: a warning here, an error there
    secrets = [
        Problem(p.file, p.line, f"{p.message} in this environment", p.fix, severity="warning")
        for p in channel_problems(config)
    ]
    content, problems = read_content(config)
    if not only_errors(problems) and config.faq.answer_threshold is None:
        problems += calibration_problems(content, config)
    drafts = draft_problems(config.resolve(config.content.faq))
    return storage_problems(config) + problems + secrets + drafts


def act_lines(config: Config) -> list[str]:
    """The act each intent is taken as and why (`bot check`): what the built-in model of what
    customers do hands off, and under which of the shop's intents."""
    content, problems = read_content(config)
    if only_errors(problems):
        return []
    encoder = content_encoder(config)
    with encoder.learning():
        model = base_model(encoder, config.cache_dir)
        taken = intent_acts(content.intents, model, encoder)
    return [
        f"  {intent.name}: {taken[intent.name]} ({why_act(intent)})" for intent in content.intents
    ]


def channel_problems(config: Config) -> list[Problem]:
    """Enabled channels whose secrets are missing from the environment and from config.toml
    (`bot run` refuses to start; `bot check` lists them)."""
    problems: list[Problem] = []
    for name, section in config.channels.enabled():
        if name == "webhook":
            webhook = config.channels.webhook
            if not os.environ.get(webhook.secret_env):
                problems.append(
                    Problem(
                        config.path,
                        line_of_key(config.path, "channels.webhook.secret_env"),
                        f"channels.webhook is enabled but ${webhook.secret_env} is not set",
                        f"export {webhook.secret_env}=<a long random secret>, e.g. from "
                        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
                    )
                )
            continue
        assert isinstance(section, ChannelSection)
        if (
            isinstance(section, TelegramChannelConfig)
            and section.mode == "webhook"
            and not config.service.public_url
        ):
            problems.append(
                Problem(
                    config.path,
                    line_of_key(config.path, "channels.telegram.mode"),
                    "channels.telegram is in webhook mode but service.public_url is not set "
                    "(Telegram needs the https address to call)",
                    'set service.public_url = "https://your.domain" (a reverse proxy in front '
                    'of bot run), or use mode = "polling", which needs no public address',
                )
            )
        for key, env, what in section.malformed_secrets():
            problems.append(
                Problem(
                    config.path,
                    line_of_key(config.path, f"channels.{name}.enabled"),
                    f"channels.{name}: the {key} in ${env} {what}",
                    f"copy it again from the platform into {env} (no spaces or quotes)",
                )
            )
        for key, env, what in section.missing_secrets():
            problems.append(
                Problem(
                    config.path,
                    line_of_key(config.path, f"channels.{name}.enabled"),
                    f"channels.{name} is enabled but {what} is missing",
                    f"export {env}=…  (or set {key} under [channels.{name}] in a config.toml "
                    "kept out of the repository)",
                )
            )
    return problems


def load_knowledge(config: Config, encoder: Encoder) -> Knowledge:
    """Read and learn the content; raises ProblemsError (file:line) when any of it is broken."""
    started = time.perf_counter()
    content, problems = read_content(config)
    if only_errors(problems):
        raise ProblemsError(only_errors(problems))
    for warning in only_warnings(problems):
        log.warning("%s", warning)
    with encoder.learning() if isinstance(encoder, MemoEncoder) else nullcontext():
        index = FaqIndex(
            content.faq,
            encoder,
            config.faq.dense_weight,
            config.faq.approximate_above,
            config.faq.answer_weight,
            config.faq.answer_mix,
            config.faq.coverage,
        )
        not_faq = not_faq_examples(content, config)
        for weakness, fix in calibration_evidence(content.faq, len(not_faq)):
            log.warning("%s: %s", weakness, fix)
        index.calibrate(
            not_faq,
            config.faq.target_precision,
            config.faq.suggestions,
            config.faq.answer_threshold,
            config.faq.suggest_threshold,
            config.faq.answer_margin,
            config.faq.neighbour_window,
        )
        background = None
        if config.faq.background:
            own = [
                example
                for intent in content.intents
                if intent.name == OUT_OF_SCOPE
                for example in intent.examples
            ]
            background = Background(builtin_texts() + own, encoder, config.faq.dense_weight)
            background.calibrate(*index.held_out())
            log.info("out of scope: %s", background.describe())
        third_parties = (
            ThirdParties(
                builtin_names(),
                shop_texts(content, config),
                common_words(t for texts in acts_corpus().values() for t in texts),
            )
            if config.faq.third_parties
            else None
        )
        if third_parties is not None:
            log.info("other companies: %s", third_parties.describe())
        acts = learn_acts(content.faq, content.intents, encoder, config.cache_dir)
        log.info(
            "customer acts: %s",
            ", ".join(f"{name} as {act}" for name, act in acts.intents.items()),
        )
        classifier = IntentClassifier(
            content.intents,
            encoder,
            config.intents.threshold,
            content.faq,
            config.intents.faq_intent,
            config.cache_dir,
        )
    log.info(
        "learnt %d FAQ entries (%d variants) and %d intents in %.1fs; FAQ %s",
        len(content.faq),
        index.variant_count,
        len(content.intents),
        time.perf_counter() - started,
        index.thresholds.describe(),
    )
    return Knowledge(
        index,
        classifier,
        {i.name: i for i in content.intents},
        content.schedules,
        background,
        third_parties,
        acts,
    )


def content_encoder(config: Config) -> MemoEncoder:
    """The configured encoder, remembering content texts in memory and in the disk cache."""
    return MemoEncoder(make_encoder(config.encoder), config.cache_dir)


def build_pipeline(
    config: Config,
    clock: Clock,
    sender: SyncSender | None = None,
    *,
    store_url: str | None = None,
    encoder: Encoder | None = None,
    knowledge: Knowledge | None = None,
) -> Pipeline:
    """The bot on the configured store, or on `store_url` (tests, `bot eval`'s scratch store).

    The configured store is checked first, so an unusable storage.url stops start-up in a
    second with the key, line and fix, before the content is learnt. `knowledge` already learnt
    from this config's content is used as it is (the tests learn the fixture shop once).
    """
    one_thread()  # the calling thread reads too (`bot chat`, `bot eval`): bot.understanding.compute
    if store_url is None:
        problems = storage_problems(config)
        if problems:
            raise ProblemsError(problems)
    if knowledge is None:
        knowledge = load_knowledge(config, encoder or content_encoder(config))
    if store_url is None:
        store = open_store(config)
    else:
        store = Store(store_url)
        store.migrate()
    return Pipeline(config, store, knowledge, clock, sender)


def open_store(config: Config) -> Store:
    """The configured store, migrated; a database that fails to open even so (a full disk, a
    file locked by another program) is reported as a problem with storage.url, not a traceback."""
    url = config.storage_url
    try:
        store = Store(url)
        store.migrate()
    except (OSError, sa.exc.DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        shown_url = sa.engine.make_url(url).render_as_string(hide_password=True)
        raise ProblemsError(
            [
                Problem(
                    config.path,
                    line_of_key(config.path, "storage.url"),
                    f"storage.url: cannot open the database {shown_url} ({reason})",
                    "run `bot check` for what is wrong with it, then fix storage.url",
                )
            ]
        ) from exc
    return store
