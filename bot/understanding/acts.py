"""What a customer does with a message, in any trade: asks, reports a problem with their own
order or account, complains, raises an emergency, asks for a person, asks staff to act, makes
small talk, or writes about something else entirely.

A shop's FAQ and a dozen examples an intent cannot teach this: a polite report ("the table
arrived with a cracked leg, could someone look into it") shares its words with the FAQ's entry
on returns, and an emergency ("my son swallowed a button from the toy") has no urgent word.
The bot ships a corpus of such acts written for the project across some forty trades, in
Chinese and English (`bot/understanding/data/acts/`), and a linear model over the sentence
embedding learnt from it. For the default encoder the model ships too (`<encoder>.npz`, made
by `python -m bot.understanding.acts`); for another encoder it is learnt at start-up once and
kept in the cache folder.

The shop's own intents are each taken as one act (`intent_acts`), so the shop's queues,
priorities and words refine what the act says without replacing it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from bot.content.entries import ACT_NAMES, OUT_OF_SCOPE, FaqEntry, IntentSpec
from bot.domain.messages import Priority
from bot.understanding.encoders import Encoder

log = logging.getLogger("bot.acts")

QUESTION = "question"
PROBLEM = "problem"
COMPLAINT = "complaint"
EMERGENCY = "emergency"
HUMAN = "human"
ACTION = "action"
SMALL_TALK = "small_talk"
UNRELATED = "unrelated"

#: every act, in the order of the model's columns
ACTS = (QUESTION, PROBLEM, COMPLAINT, EMERGENCY, HUMAN, ACTION, SMALL_TALK, UNRELATED)
assert ACTS == ACT_NAMES
#: the acts only a person can take further
NEEDS_PERSON = (PROBLEM, COMPLAINT, EMERGENCY, HUMAN, ACTION)
#: the model's columns of a person's work other than an emergency
_PERSON_WORK = [ACTS.index(act) for act in NEEDS_PERSON if act != EMERGENCY]
#: ... of which a FAQ entry can answer some: a report of a problem, a complaint, a request for an
#: action ("how do I change my address" answers "please change my address"). It never answers
#: a request for a person, so phrasings that read as one ("人工客服几点上班", asking about the
#: agents' hours) do not make the entry one that answers people's work (`entries_for_acts`)
_ANSWERABLE_WORK = [ACTS.index(act) for act in (PROBLEM, COMPLAINT, ACTION)]

#: bump when the features or the model change, so shipped and cached models of the old kind
#: are not used
MODEL_VERSION = 1
#: inverse regularisation of the corpus-only logistic regression
C = 4.0
#: how strongly refining on a shop's content is held to the corpus-only model
PRIOR = 0.001
#: L-BFGS steps when refining (a start-up cost, then cached)
REFINE_STEPS = 100


@functools.cache
def corpus() -> dict[str, tuple[str, ...]]:
    """The shipped examples of each act, every language (read once; do not change it)."""
    examples: dict[str, list[str]] = {act: [] for act in ACTS}
    folder = resources.files("bot.understanding").joinpath("data/acts")
    for name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml")):
        data = yaml.safe_load(folder.joinpath(name).read_text("utf-8")) or {}
        for act, texts in data.items():
            examples[str(act)].extend(str(t) for t in texts)
    return {act: tuple(texts) for act, texts in examples.items()}


def corpus_key(examples: Mapping[str, Sequence[str]], encoder: str) -> str:
    """What a model was learnt from: the corpus, the encoder and the model's version."""
    data = [MODEL_VERSION, encoder, {act: list(examples.get(act, ())) for act in ACTS}]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode("utf-8")).hexdigest()


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms == 0, 1, norms))


def _with_bias(vectors: np.ndarray) -> np.ndarray:
    return np.hstack([_unit(vectors), np.ones((len(vectors), 1), dtype=np.float32)])


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class ActModel:
    """Multinomial logistic regression over the unit-length sentence embedding: `weights` is
    acts × (dimensions + 1), the last column the bias."""

    weights: np.ndarray
    key: str

    @classmethod
    def learn(cls, vectors: np.ndarray, labels: np.ndarray, key: str) -> ActModel:
        """From the corpus alone: what every shop gets before its own content refines it."""
        model = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        model.fit(_unit(vectors), labels)
        if [int(c) for c in model.classes_] != list(range(len(ACTS))):
            raise ValueError("the act corpus needs examples of every act")
        weights = np.hstack([model.coef_, model.intercept_[:, None]]).astype(np.float32)
        return cls(weights, key)

    def refine(
        self, corpus: tuple[np.ndarray, np.ndarray], own: tuple[np.ndarray, np.ndarray], key: str
    ) -> ActModel:
        """Learnt again from the corpus and the shop's own examples together (each set counting
        as much as the other, every act equally within the corpus), starting from this model
        and held near it: the shop's FAQ phrasings are questions here, whatever they resemble
        elsewhere, and its handoff intents' examples are the acts they are taken as."""
        sets = []
        for (vectors, labels), balanced in ((corpus, True), (own, False)):
            if not len(labels):
                continue
            weight = np.full(len(labels), 1 / len(labels))
            if balanced:  # every act counts alike, as when the model was learnt
                counts = np.bincount(labels, minlength=len(ACTS))
                weight /= len(ACTS) * np.maximum(counts, 1)[labels] / len(labels)
            target = np.eye(len(ACTS))[labels]
            sets.append((_with_bias(vectors).astype(np.float64), target, weight))
        start = self.weights.astype(np.float64)

        def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = flat.reshape(start.shape)
            total = PRIOR * float(np.sum((w - start) ** 2))
            gradient = 2 * PRIOR * (w - start)
            for features, target, weight in sets:
                p = _softmax(features @ w.T)
                total -= float(np.sum(weight[:, None] * target * np.log(p + 1e-12)))
                gradient += (weight[:, None] * (p - target)).T @ features
            return total, gradient.ravel()

        result = minimize(
            loss, start.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": REFINE_STEPS}
        )
        return ActModel(result.x.reshape(start.shape).astype(np.float32), key)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """One row per text, one column per act (ACTS), summing to 1."""
        return _softmax(_with_bias(vectors) @ self.weights.T)

    def save(self, path: Path, corpus_vectors: np.ndarray | None = None) -> None:
        """Write the model (and, for the shipped one, the corpus's vectors, so that refining
        needs no encoding)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"weights": self.weights, "key": np.array(self.key)}
        if corpus_vectors is not None:
            arrays["vectors"] = corpus_vectors.astype(np.float16)
        with path.open("wb") as out:
            np.savez_compressed(out, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path, key: str) -> ActModel | None:
        """The model stored at `path`, if it was learnt from exactly `key`'s data (the corpus
        vectors stored beside it are left unread: `stored_vectors`)."""
        try:
            with np.load(path) as data:
                model = cls(data["weights"], str(data["key"]))
        except (OSError, KeyError, ValueError) as exc:
            if path.exists():
                log.warning("ignoring unreadable act model %s: %s", path, exc)
            return None
        return model if model.key == key else None


def stored_vectors(path: Path) -> np.ndarray | None:
    """The corpus vectors stored beside a model (the shipped one's), when there are any."""
    try:
        with np.load(path) as data:
            return data["vectors"].astype(np.float32) if "vectors" in data else None
    except (OSError, KeyError, ValueError):
        return None


def shipped_path(encoder: str) -> Path:
    return Path(str(resources.files("bot.understanding").joinpath(f"data/acts/{encoder}.npz")))


def corpus_arrays(examples: Mapping[str, Sequence[str]]) -> tuple[list[str], np.ndarray]:
    texts = [t for act in ACTS for t in examples.get(act, ())]
    labels = np.array([ACTS.index(act) for act in ACTS for _ in examples.get(act, ())])
    return texts, labels


def base_model(encoder: Encoder, cache: Path | None) -> ActModel:
    """The corpus-only model: shipped for the default encoder; for another, learnt once and
    cached."""
    examples = corpus()
    key = corpus_key(examples, encoder.name)
    shipped = ActModel.load(shipped_path(encoder.name), key)
    if shipped is not None:
        return shipped
    cached = ActModel.load(cache / f"acts-base-{key[:24]}.npz", key) if cache else None
    if cached is not None:
        return cached
    log.info("learning customer acts for encoder %s (once; then cached)", encoder.name)
    vectors, labels = base_corpus(encoder)
    model = ActModel.learn(vectors, labels, key)
    if cache is not None:
        _store(model, cache / f"acts-base-{key[:24]}.npz", prefix="acts-base-")
    return model


def base_corpus(encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    """The corpus's vectors and labels: shipped beside the default encoder's model (18 MB once
    read, so only read when a shop's model is learnt), else encoded (the embedding cache keeps
    them)."""
    texts, labels = corpus_arrays(corpus())
    shipped = stored_vectors(shipped_path(encoder.name))
    if shipped is not None and len(shipped) == len(labels):
        return shipped, labels
    return encoder.encode(texts), labels


@dataclass(frozen=True)
class ShopActs:
    """The act model refined on a shop's content, the act each of its intents is taken as,
    and the FAQ entries whose phrasings are themselves reports of a problem or requests
    ("the lid arrived cracked"): the shop chose to answer those acts with a paragraph."""

    model: ActModel
    intents: dict[str, str]
    faq_answers_acts: frozenset[str]


def entries_for_acts(faq: Sequence[FaqEntry], base: ActModel, encoder: Encoder) -> frozenset[str]:
    """The entries whose phrasings, on average, read as a person's work a FAQ entry can
    answer (`_ANSWERABLE_WORK`)."""
    return frozenset(
        entry.id
        for entry in faq
        if _mean_acts(entry.questions, base, encoder)[_ANSWERABLE_WORK].sum() > 0.5
    )


def _mean_acts(texts: Sequence[str], model: ActModel, encoder: Encoder) -> np.ndarray:
    """The mean probability of each act over `texts`."""
    return np.asarray(model.probabilities(encoder.encode(list(texts))).mean(axis=0))


def learn_acts(
    faq: Sequence[FaqEntry], intents: Sequence[IntentSpec], encoder: Encoder, cache: Path | None
) -> ShopActs:
    """The act model refined on the shop's own content, and what the shop's intents and FAQ
    entries are taken as. A refined model is kept in the cache folder and reused while the
    content is unchanged."""
    base = base_model(encoder, cache)
    taken = intent_acts(intents, base, encoder)
    answered = entries_for_acts(faq, base, encoder)
    own = [(q, QUESTION) for entry in faq for q in entry.questions] + [
        (example, taken[intent.name]) for intent in intents for example in intent.examples
    ]
    if not own:
        return ShopActs(base, taken, answered)
    key = hashlib.sha256(
        json.dumps([base.key, PRIOR, REFINE_STEPS, own], ensure_ascii=False).encode()
    ).hexdigest()
    path = cache / f"acts-shop-{key[:24]}.npz" if cache else None
    stored = ActModel.load(path, key) if path else None
    if stored is not None:
        return ShopActs(stored, taken, answered)
    texts = [text for text, _ in own]
    own_labels = np.array([ACTS.index(act) for _, act in own])
    model = base.refine(base_corpus(encoder), (encoder.encode(texts), own_labels), key)
    if path is not None:
        _store(model, path, prefix="acts-shop-")
    return ShopActs(model, taken, answered)


def _store(model: ActModel, path: Path, prefix: str) -> None:
    """Write atomically enough (a torn file is ignored when read) and drop older ones."""
    try:
        model.save(path)
        for old in path.parent.glob(f"{prefix}*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not write the act model cache %s: %s", path, exc)


def _by_rule(intent: IntentSpec) -> tuple[str, str] | None:
    """The act an intent's own settings make it, and which setting; None for a handoff intent
    whose examples must say."""
    if intent.act:
        return intent.act, "its act: key"
    if intent.name == OUT_OF_SCOPE:
        return UNRELATED, "out_of_scope"
    if intent.action == "reply":
        return SMALL_TALK, "action reply"
    if intent.action != "handoff":
        return QUESTION, f"action {intent.action}"
    if intent.priority == Priority.URGENT:
        return EMERGENCY, "priority urgent"
    return None


def intent_act(intent: IntentSpec, probabilities: np.ndarray | None) -> str:
    """The act a shop's intent is taken as: what its action says where that is unambiguous
    (small talk, out of scope, an answer), an urgent priority an emergency, and otherwise the
    act of a person's work its examples are most like (`probabilities`: its examples' mean)."""
    ruled = _by_rule(intent)
    if ruled is not None:
        return ruled[0]
    if probabilities is None:
        return ACTION
    return ACTS[_PERSON_WORK[int(np.argmax(probabilities[_PERSON_WORK]))]]


def why_act(intent: IntentSpec) -> str:
    """What an intent's act was worked out from (for `bot check`)."""
    ruled = _by_rule(intent)
    return ruled[1] if ruled is not None else "what its examples read as"


def intent_acts(intents: Sequence[IntentSpec], model: ActModel, encoder: Encoder) -> dict[str, str]:
    """Each intent's act (see `intent_act`), by name."""
    return {
        intent.name: intent_act(
            intent, _mean_acts(intent.examples, model, encoder) if intent.examples else None
        )
        for intent in intents
    }


def main(argv: Sequence[str]) -> int:
    """Learn the corpus-only act model for the default encoder and write it, with the corpus's
    vectors, beside the corpus."""
    from bot.understanding.encoders import UseEncoder

    encoder = UseEncoder()
    examples = corpus()
    texts, labels = corpus_arrays(examples)
    vectors = encoder.encode(texts)
    model = ActModel.learn(vectors, labels, corpus_key(examples, encoder.name))
    path = Path(argv[0]) if argv else shipped_path(encoder.name)
    model.save(path, vectors)
    print(f"wrote {path} ({model.key[:12]}, {len(texts)} examples)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
