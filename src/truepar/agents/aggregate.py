"""Combining what several agents recommend: merge, vote, escalate.

Agents asked the same thing in parallel answer in one of two shapes: a JSON object of answers
(``{"database": "postgres", "cache": true}``, one key per question) or a list of
recommendations (``["add an index", "drop the cache"]``). Raw text is read by
:func:`parse_output`. Three pure functions combine the answers:

- :func:`merge` keeps what does not conflict and lists, key by key, what does;
- :func:`vote` decides each question by plurality, with confidence = the winner's share of the
  votes, and says so explicitly when the top answers tie (it never breaks a tie silently);
- :func:`escalate` hands the conflicts to a human or a designated agent, with who said what.

Values are compared as canonical JSON, so ``1`` and ``1.0`` or ``true`` and ``1`` are different
answers, while dicts with the same items in another order are the same. Recommendations are
compared ignoring case and runs of spaces. Every result is independent of the order the agents
are given in.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from truepar.errors import BadInput

__all__ = (
    "Conflict",
    "Decision",
    "Escalation",
    "Merged",
    "Position",
    "Recommendation",
    "VoteResult",
    "escalate",
    "merge",
    "parse_output",
    "vote",
)

Answers = dict[str, Any]
Normalized = tuple[dict[str, Answers], dict[str, list[str]]]

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def parse_output(text: str) -> dict[str, Any] | list[str]:
    """An agent's output as answers (a JSON object) or recommendations (a JSON list of strings,
    or else its non-empty lines without list bullets). A fenced ```json block is found too."""
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v for v in value if v.strip()]
    lines = (_BULLET.sub("", line).strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("```")]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _normalize(outputs: Mapping[str, Any]) -> Normalized:
    answers: dict[str, Answers] = {}
    lists: dict[str, list[str]] = {}
    for agent, output in outputs.items():
        value = parse_output(output) if isinstance(output, str) else output
        if isinstance(value, Mapping):
            answers[str(agent)] = {str(k): v for k, v in value.items()}
        elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            lists[str(agent)] = list(value)
        else:
            raise BadInput(
                f"agent {agent!r}: output must be a JSON object, a list of strings or text, "
                f"not {type(value).__name__}"
            )
    return answers, lists


# ------------------------------------------------------------------------------------ results


@dataclasses.dataclass(frozen=True)
class Position:
    """One answer to a question and the agents that gave it."""

    value: Any
    agents: tuple[str, ...]

    @property
    def votes(self) -> int:
        return len(self.agents)


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A question the agents answered differently; ``silent`` gave no answer to it."""

    key: str
    positions: tuple[Position, ...]
    silent: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """A recommendation (as first worded, by agent name order) and who made it; ``share`` is
    the fraction of the agents that gave recommendations."""

    text: str
    agents: tuple[str, ...]
    share: float


def _positions(answers: Mapping[str, Answers], key: str) -> tuple[Position, ...]:
    groups: dict[str, tuple[Any, list[str]]] = {}
    for agent in sorted(answers):
        if key in answers[agent]:
            value = answers[agent][key]
            groups.setdefault(_canon(value), (value, []))[1].append(agent)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1][1]), item[0]))
    return tuple(Position(value, tuple(agents)) for _, (value, agents) in ordered)


def _recommendations(lists: Mapping[str, list[str]]) -> tuple[Recommendation, ...]:
    groups: dict[str, tuple[str, set[str]]] = {}
    for agent in sorted(lists):
        for text in lists[agent]:
            groups.setdefault(_norm(text), (text.strip(), set()))[1].add(agent)
    total = len(lists)
    items = sorted(groups.items(), key=lambda item: (-len(item[1][1]), item[0]))
    return tuple(
        Recommendation(text, tuple(sorted(who)), len(who) / total) for _, (text, who) in items
    )


def _keys(answers: Mapping[str, Answers]) -> list[str]:
    return sorted({key for a in answers.values() for key in a})


# -------------------------------------------------------------------------------------- merge


@dataclasses.dataclass(frozen=True)
class Merged:
    """Answers every agent that gave them agrees on, the conflicts, and all recommendations."""

    agents: tuple[str, ...]
    values: Mapping[str, Any]
    sources: Mapping[str, tuple[str, ...]]
    conflicts: tuple[Conflict, ...]
    recommendations: tuple[Recommendation, ...]

    @property
    def ok(self) -> bool:
        """No conflicts: ``values`` is the whole answer."""
        return not self.conflicts


def merge(outputs: Mapping[str, Any]) -> Merged:
    """Combine non-conflicting outputs; list each conflicting key with who said what.

    A key only some agents answer is not a conflict: the others had nothing to say about it.
    Recommendation lists are united, each once, with the agents that made it.
    """
    answers, lists = _normalize(outputs)
    values: dict[str, Any] = {}
    sources: dict[str, tuple[str, ...]] = {}
    conflicts = []
    for key in _keys(answers):
        positions = _positions(answers, key)
        if len(positions) == 1:
            values[key] = positions[0].value
            sources[key] = positions[0].agents
        else:
            silent = tuple(sorted(a for a in answers if key not in answers[a]))
            conflicts.append(Conflict(key, positions, silent))
    return Merged(
        agents=tuple(sorted(str(a) for a in outputs)),
        values=values,
        sources=sources,
        conflicts=tuple(conflicts),
        recommendations=_recommendations(lists),
    )


# --------------------------------------------------------------------------------------- vote


@dataclasses.dataclass(frozen=True)
class Decision:
    """The vote on one question. With ``tie`` there is no winner: ``tied`` holds the answers
    that share the top count, and ``winner`` is ``None``."""

    question: str
    winner: Any
    votes: int
    total: int
    confidence: float
    tie: bool
    tied: tuple[Any, ...]
    positions: tuple[Position, ...]
    abstained: tuple[str, ...]

    @property
    def majority(self) -> bool:
        """The winner has more than half of the votes cast on this question."""
        return not self.tie and self.votes * 2 > self.total


@dataclasses.dataclass(frozen=True)
class VoteResult:
    decisions: tuple[Decision, ...]
    #: Recommendations made by more than half / exactly half / fewer than half of the agents.
    accepted: tuple[Recommendation, ...]
    split: tuple[Recommendation, ...]
    rejected: tuple[Recommendation, ...]

    @property
    def ties(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.tie)

    def winners(self) -> dict[str, Any]:
        """Each decided question's winning answer (ties are left out: see :attr:`ties`)."""
        return {d.question: d.winner for d in self.decisions if not d.tie}


def vote(outputs: Mapping[str, Any]) -> VoteResult:
    """Decide each question by plurality; confidence = the winner's share of the votes cast."""
    answers, lists = _normalize(outputs)
    decisions = []
    for key in _keys(answers):
        positions = _positions(answers, key)
        total = sum(p.votes for p in positions)
        top = [p for p in positions if p.votes == positions[0].votes]
        tie = len(top) > 1
        decisions.append(
            Decision(
                question=key,
                winner=None if tie else top[0].value,
                votes=top[0].votes,
                total=total,
                confidence=top[0].votes / total,
                tie=tie,
                tied=tuple(p.value for p in top) if tie else (),
                positions=positions,
                abstained=tuple(sorted(a for a in answers if key not in answers[a])),
            )
        )
    recs = _recommendations(lists)
    return VoteResult(
        decisions=tuple(decisions),
        accepted=tuple(r for r in recs if r.share > 0.5),
        split=tuple(r for r in recs if r.share == 0.5),
        rejected=tuple(r for r in recs if r.share < 0.5),
    )


# ----------------------------------------------------------------------------------- escalate


@dataclasses.dataclass(frozen=True)
class Escalation:
    """What needs a decision from ``to`` (a person, or a designated agent's name)."""

    to: str
    conflicts: tuple[Conflict, ...]
    split: tuple[Recommendation, ...]
    agreed: Mapping[str, Any]

    @property
    def needed(self) -> bool:
        return bool(self.conflicts or self.split)

    def to_dict(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "conflicts": [
                {
                    "key": c.key,
                    "positions": [
                        {"value": p.value, "agents": list(p.agents)} for p in c.positions
                    ],
                    "silent": list(c.silent),
                }
                for c in self.conflicts
            ],
            "split": [{"text": r.text, "agents": list(r.agents)} for r in self.split],
            "agreed": dict(self.agreed),
        }

    def prompt(self) -> str:
        """A Markdown brief for whoever decides: each open question and who said what."""
        if not self.needed:
            return f"For {self.to}: the agents agree; nothing to decide.\n"
        lines = [f"For {self.to}: the agents disagree on {len(self.conflicts)} question(s).", ""]
        for c in self.conflicts:
            lines.append(f"## {c.key}")
            for p in c.positions:
                lines.append(f"- {_canon(p.value)}: {', '.join(p.agents)}")
            if c.silent:
                lines.append(f"- (no answer): {', '.join(c.silent)}")
            lines.append("")
        if self.split:
            lines.append("## Recommendations made by exactly half of the agents")
            lines += [f"- {r.text}: {', '.join(r.agents)}" for r in self.split]
            lines.append("")
        if self.agreed:
            lines.append(
                "Agreed: " + ", ".join(f"{k} = {_canon(v)}" for k, v in self.agreed.items())
            )
        return "\n".join(lines).rstrip() + "\n"


def escalate(outputs: Mapping[str, Any], *, to: str = "human") -> Escalation:
    """The conflicts (and evenly split recommendations) for ``to`` to decide, with who said
    what, and the answers everyone agreed on for context."""
    merged = merge(outputs)
    split = vote(outputs).split
    return Escalation(to=to, conflicts=merged.conflicts, split=split, agreed=dict(merged.values))
