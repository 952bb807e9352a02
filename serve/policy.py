"""The policy engine: which actions a platform takes for a classified text, read from a versioned YAML file.

`load_policy(path)` reads and validates `serve/policy.yaml` (or the file `SAHAY_POLICY_PATH` names) once at
start; `policy.decide(signals, thresholds, surface, country)` then maps one item to a `Decision`.

Semantics: **ordered rules, the first rule that matches decides** (like a firewall). A rule matches when every
condition in its `when` holds (`signal >= threshold` of the named operating point from the model artifact),
the surface is in its `surfaces` and the country in its `countries` (either absent = any; a rule with
countries never matches an unknown country). No rule matched -> `[none]`. First match rather than merging all
matching rules because each decision then has exactly one reason (the rule's name is logged, counted and
audited), and exceptions ("not on search", "differently in IN") are written as a more specific rule above the
general one instead of as an override that merging cannot express. A text that crosses two signals gets a
rule of its own that lists the actions of both (see the default policy); a rule that an earlier rule always
pre-empts is refused at load time, so a mis-ordered file cannot silently drop actions.

Validation: the YAML is composed into nodes that keep their line numbers, checked for structure with Pydantic
(unknown fields, types, ranges) and then for meaning (known surfaces, signals, countries, interstitial kinds,
operating points of the right signal, duplicate names, unreachable rules). Every problem becomes one line of
a `PolicyError`: `"<file> line 17: rule 'x': unknown surface 'reel' (allowed: ...)"`. Operating-point names are
checked against the loaded model with `Policy.check_operating_points`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from serve.schemas import Surface

SIGNALS: tuple[str, ...] = ("at_risk", "urgent", "violating")
SURFACES: tuple[str, ...] = get_args(Surface)
ACTION_TYPES: tuple[str, ...] = ("interstitial", "enqueue", "limit_distribution", "none")
KINDS: tuple[str, ...] = ("author_support", "search_support", "viewer_warning")
"""Interstitial kinds the /interstitial page can render: to the writer, on a search, to other viewers."""
PRIORITY_MIN, PRIORITY_MAX = 1, 5
"""Queue priority: 1 is the most urgent."""
SLA_MAX_MINUTES = 7 * 24 * 60

_ISO_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
    IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    XK
"""
_ISO_3166_ALPHA2 = frozenset(_ISO_CODES.split())
"""ISO 3166-1 alpha-2 (the 249 assigned codes), plus XK (Kosovo, user-assigned but what platforms send)."""
_COUNTRY_HINTS = {"UK": "GB", "EL": "GR", "EU": None}

_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VERSION = re.compile(r"^\S{1,64}$")
_MAX_NODES = 100_000

Path_ = tuple[str | int, ...]


# ----------------------------------------------------------------------------------------------- errors


class PolicyError(ValueError):
    """A policy file that cannot be used. The message has one line per problem, each naming the file and line.

    `problems` holds those lines, `line` the first problem's line number (None when it has none).
    """

    def __init__(self, message: str, *, line: int | None = None, problems: Iterable[str] = ()):
        super().__init__(message)
        self.line = line
        self.problems = list(problems) or [message]

    @classmethod
    def from_problems(cls, source: str, problems: Iterable[tuple[int | None, str]]) -> PolicyError:
        ordered = sorted(problems, key=lambda p: (p[0] is None, p[0] or 0))
        lines = [f"{source} line {n}: {what}" if n is not None else f"{source}: {what}" for n, what in ordered]
        return cls("\n".join(lines), line=ordered[0][0] if ordered else None, problems=lines)


# ----------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Action:
    """One thing the platform does: `interstitial` (of `kind`), `enqueue` (`priority`, `sla_minutes`),
    `limit_distribution` (not recommended, promoted or forwardable; never removed), or `none`."""

    type: str
    kind: str | None = None
    priority: int | None = None
    sla_minutes: int | None = None

    @property
    def name(self) -> str:
        """`interstitial:author_support`, `enqueue`, `limit_distribution` or `none` (for logs and metrics)."""
        return f"{self.type}:{self.kind}" if self.type == "interstitial" else self.type

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


NONE = Action("none")


@dataclass(frozen=True)
class Decision:
    """The actions for one item, the rule that chose them (None when none matched) and the policy's version tag."""

    actions: list[Action]
    rule: str | None
    policy_version: str

    @property
    def action_names(self) -> list[str]:
        return [a.name for a in self.actions]

    def to_dict(self) -> dict:
        return {
            "actions": [a.to_dict() for a in self.actions],
            "rule": self.rule,
            "policy_version": self.policy_version,
        }


@dataclass(frozen=True)
class Condition:
    signal: str
    point: str
    """Operating-point name in the model artifact, e.g. `at_risk.balanced`."""

    def to_dict(self) -> dict:
        return {"signal": self.signal, "at": self.point}


@dataclass(frozen=True)
class Interstitial:
    kind: str
    allow_continue: bool
    description: str | None = None

    def to_dict(self) -> dict:
        return {"allow_continue": self.allow_continue, "description": self.description}


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    """All must hold; empty = always."""
    surfaces: tuple[str, ...] | None
    countries: tuple[str, ...] | None
    actions: tuple[Action, ...]
    line: int
    description: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "when": [c.to_dict() for c in self.conditions],
            "surfaces": list(self.surfaces) if self.surfaces is not None else None,
            "countries": list(self.countries) if self.countries is not None else None,
            "actions": [a.to_dict() for a in self.actions],
            "description": self.description,
            "line": self.line,
        }


# ----------------------------------------------------------------------------------------------- the policy


class Policy:
    """A validated policy. Build it with `load_policy`; it is immutable and safe to share between threads."""

    def __init__(
        self,
        version: str,
        rules: Iterable[Rule],
        interstitials: Mapping[str, Interstitial],
        source: str = "policy.yaml",
    ):
        self.version = version
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.interstitials: dict[str, Interstitial] = dict(interstitials)
        self.source = source
        self.content_hash = _content_hash(self.rules, self.interstitials)
        """First 12 hex digits of a SHA-256 over the rules and interstitials (comments and descriptions excluded):
        two files with the same `version` but different behaviour get different hashes."""
        self.version_tag = f"{version}+{self.content_hash}"
        """What every decision carries: `<version>+<content hash>`."""

    def __repr__(self) -> str:
        return f"Policy({self.version_tag!r}, {len(self.rules)} rules)"

    @property
    def kinds(self) -> list[str]:
        """The interstitial kinds this policy defines."""
        return list(self.interstitials)

    def allows_continue(self, kind: str) -> bool:
        """Whether the interstitial of `kind` offers "continue" / "see results anyway". KeyError for an unknown kind."""
        try:
            return self.interstitials[kind].allow_continue
        except KeyError:
            raise KeyError(f"unknown interstitial kind {kind!r} (defined: {', '.join(self.kinds)})") from None

    def check_operating_points(self, names: Iterable[str]) -> None:
        """Raise PolicyError, naming each rule and line, if a rule uses an operating point not in `names`
        (the loaded model's points). Call it once after loading the model."""
        available = set(names)
        problems = [
            (
                rule.line,
                f"rule '{rule.name}': operating point '{c.point}' is not in the model artifact "
                f"(it has: {', '.join(sorted(available)) or 'none'})",
            )
            for rule in self.rules
            for c in rule.conditions
            if c.point not in available
        ]
        if problems:
            raise PolicyError.from_problems(self.source, problems)

    def decide(
        self,
        signals: Mapping[str, float],
        thresholds: Mapping[str, float],
        surface: str,
        country: str | None,
    ) -> Decision:
        """The first matching rule's actions for one item, or `[none]`.

        `signals`: at_risk, urgent, violating; `thresholds`: operating-point name -> threshold from the artifact;
        `surface`: one of SURFACES; `country`: ISO 3166-1 alpha-2 (any case) or None when unknown.
        """
        if surface not in SURFACES:
            raise ValueError(f"unknown surface {surface!r} (allowed: {', '.join(SURFACES)})")
        country = country.upper() if country else None
        for rule in self.rules:
            if rule.surfaces is not None and surface not in rule.surfaces:
                continue
            if rule.countries is not None and country not in rule.countries:
                continue
            if all(self._holds(rule, c, signals, thresholds) for c in rule.conditions):
                return Decision(list(rule.actions), rule.name, self.version_tag)
        return Decision([NONE], None, self.version_tag)

    def _holds(self, rule: Rule, c: Condition, signals: Mapping[str, float], thresholds: Mapping[str, float]) -> bool:
        try:
            threshold = thresholds[c.point]
        except KeyError:
            raise PolicyError.from_problems(
                self.source, [(rule.line, f"rule '{rule.name}': operating point '{c.point}' has no threshold")]
            ) from None
        try:
            value = signals[c.signal]
        except KeyError:
            raise ValueError(f"signal {c.signal!r} is missing (rule '{rule.name}' needs it)") from None
        return value >= threshold

    def to_dict(self) -> dict:
        """The policy in force, for the admin endpoint."""
        return {
            "version": self.version,
            "content_hash": self.content_hash,
            "version_tag": self.version_tag,
            "source": self.source,
            "evaluation": "first_match",
            "interstitials": {k: v.to_dict() for k, v in self.interstitials.items()},
            "rules": [r.to_dict() for r in self.rules],
            "default_actions": [NONE.to_dict()],
        }


def _content_hash(rules: tuple[Rule, ...], interstitials: Mapping[str, Interstitial]) -> str:
    behaviour = {
        "interstitials": {k: v.allow_continue for k, v in interstitials.items()},
        "rules": [{k: v for k, v in r.to_dict().items() if k not in ("line", "description")} for r in rules],
    }
    blob = json.dumps(behaviour, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------- file schema


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _ConditionSpec(_Spec):
    signal: str
    at: str


class _InterstitialAction(_Spec):
    type: Literal["interstitial"]
    kind: str


class _EnqueueAction(_Spec):
    type: Literal["enqueue"]
    priority: int = Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)
    sla_minutes: int = Field(gt=0, le=SLA_MAX_MINUTES)


class _LimitAction(_Spec):
    type: Literal["limit_distribution"]


class _NoneAction(_Spec):
    type: Literal["none"]


_ACTION_MODELS: dict[str, type[_Spec]] = {
    "interstitial": _InterstitialAction,
    "enqueue": _EnqueueAction,
    "limit_distribution": _LimitAction,
    "none": _NoneAction,
}
_ActionSpec = Annotated[
    _InterstitialAction | _EnqueueAction | _LimitAction | _NoneAction,
    Field(discriminator="type"),
]


class _RuleSpec(_Spec):
    name: str
    description: str | None = None
    when: list[_ConditionSpec] | None = Field(None, min_length=1)
    surfaces: list[str] | None = None
    countries: list[str] | None = None
    actions: list[_ActionSpec] = Field(min_length=1)

    @field_validator("when", mode="before")
    @classmethod
    def _one_condition(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class _InterstitialSpec(_Spec):
    allow_continue: bool
    description: str | None = None


class _PolicySpec(_Spec):
    version: str
    description: str | None = None
    interstitials: dict[str, _InterstitialSpec]
    rules: list[_RuleSpec] = Field(min_length=1)


# ----------------------------------------------------------------------------------------------- loading


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; PolicyError (file, line, what is wrong) if it cannot be used."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError.from_problems(source, [(None, f"cannot read the policy file: {exc}")]) from None
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "policy.yaml") -> Policy:
    """Validate policy YAML given as text; `source` names it in error messages."""
    data, lines = _compose(text, source)
    try:
        spec = _PolicySpec.model_validate(data)
    except ValidationError as exc:
        problems = [_pydantic_problem(err, data, lines) for err in exc.errors(include_url=False)]
        raise PolicyError.from_problems(source, problems) from None
    return _build(spec, lines, source)


def _compose(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Plain Python data from YAML, and the 1-based line of every mapping key and list item (by path)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        if exc.context_mark and mark and exc.context_mark.line != mark.line:
            what += f" (the construct opened on line {exc.context_mark.line + 1})"
        raise PolicyError.from_problems(source, [(mark.line + 1 if mark else None, f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError.from_problems(source, [(None, f"invalid YAML: {exc}")]) from None
    if root is None:
        raise PolicyError.from_problems(source, [(1, "the policy file is empty")])
    lines: dict[Path_, int] = {(): root.start_mark.line + 1}
    constructor = yaml.SafeLoader("")
    budget = [_MAX_NODES]
    problems: list[tuple[int | None, str]] = []

    def convert(node: yaml.Node, path: Path_, active: frozenset[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise PolicyError.from_problems(source, [(node.start_mark.line + 1, "too many YAML nodes (aliases?)")])
        if id(node) in active:
            raise PolicyError.from_problems(source, [(node.start_mark.line + 1, "recursive YAML alias")])
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    problems.append((line, "keys must be plain names (no complex keys or '<<' merges)"))
                    continue
                key = key_node.value
                if key in out:
                    first = lines[(*path, key)]
                    problems.append((line, f"duplicate key '{key}' (first at line {first})"))
                    continue
                lines[(*path, key)] = line
                out[key] = convert(value_node, (*path, key), active | {id(node)})
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                lines[(*path, i)] = item.start_mark.line + 1
                items.append(convert(item, (*path, i), active | {id(node)}))
            return items
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # e.g. an unquoted `version: 2026-11-29` stays the string it looks like
        try:
            return constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problems.append((node.start_mark.line + 1, f"invalid value: {exc}"))
            return None

    data = convert(root, (), frozenset())
    if problems:
        raise PolicyError.from_problems(source, problems)
    return data, lines


# ----------------------------------------------------------------------------------------------- error messages


def _locate(loc: tuple, lines: dict[Path_, int]) -> Path_:
    """The longest real path in `loc` (pydantic adds union tags and list indexes that are not in the file)."""
    path: Path_ = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return path


def _describe(path: Path_, data: Any) -> tuple[str, str]:
    """(who, field): "rule 'urgent'" / "interstitial 'x'" / "", and the field path inside it."""
    who, rest = "", list(path)
    if len(path) >= 2 and path[0] == "rules":
        rule = data["rules"][path[1]] if isinstance(data, dict) else None
        name = rule.get("name") if isinstance(rule, dict) else None
        who = f"rule '{name}'" if isinstance(name, str) else f"rules[{path[1]}]"
        rest = list(path[2:])
    elif len(path) >= 2 and path[0] == "interstitials":
        who, rest = f"interstitial '{path[1]}'", list(path[2:])
    field = ""
    for part in rest:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return who, field


def _allowed_fields(path: Path_, loc: tuple) -> list[str]:
    if not path:
        model = _PolicySpec
    elif path[0] == "interstitials":
        model = _InterstitialSpec
    elif "when" in path:
        model = _ConditionSpec
    elif "actions" in path:
        i = loc.index("actions") + 2
        model = _ACTION_MODELS.get(loc[i], _Spec) if i < len(loc) else _Spec
    else:
        model = _RuleSpec
    return list(model.model_fields)


def _pydantic_problem(err: dict, data: Any, lines: dict[Path_, int]) -> tuple[int | None, str]:
    loc, kind = tuple(err["loc"]), err["type"]
    target = loc[:-1] if kind in ("missing", "extra_forbidden") else loc
    path = _locate(target, lines)
    if kind == "extra_forbidden" and (*path, loc[-1]) in lines:
        line = lines[(*path, loc[-1])]
    elif kind in ("union_tag_invalid", "union_tag_not_found") and (*path, "type") in lines:
        line = lines[(*path, "type")]
    elif kind == "missing" and not path:
        line = 1  # a top-level key the file lacks: the file as a whole
    else:
        line = lines.get(path, lines[()])
    who, field = _describe(path, data)

    if kind == "missing" and not path:
        what = f"missing required top-level key '{loc[-1]}'"
    elif kind == "missing":
        what = f"missing required field '{loc[-1]}'"
    elif kind == "extra_forbidden":
        what = f"unknown field '{loc[-1]}' (allowed: {', '.join(_allowed_fields(path, loc))})"
    elif kind == "union_tag_invalid":
        what = f"unknown action type '{err['ctx']['tag']}' (allowed: {', '.join(ACTION_TYPES)})"
    elif kind == "union_tag_not_found":
        what = f"action has no 'type' (one of: {', '.join(ACTION_TYPES)})"
    elif kind in ("model_attributes_type", "model_type", "dict_type") and "actions" in path:
        what = "an action is a mapping such as {type: enqueue, priority: 1, sla_minutes: 15}"
    elif kind in ("model_attributes_type", "model_type", "dict_type"):
        what = "must be a mapping"
    elif kind == "string_type" and path == ("version",):
        what = f'must be a string; quote it, e.g. version: "2026-11-29.1" (got {err["input"]!r})'
    else:
        what = err["msg"].replace("Input should be", "must be").removeprefix("Value error, ")
        if isinstance(err.get("input"), str | int | float | bool):
            what += f" (got {err['input']!r})"
    prefix = ": ".join(p for p in (who, field) if p)
    return line, f"{prefix}: {what}" if prefix else what


# ----------------------------------------------------------------------------------------------- meaning


def _build(spec: _PolicySpec, lines: dict[Path_, int], source: str) -> Policy:
    problems: list[tuple[int | None, str]] = []

    def at(*path: str | int) -> int:
        """The line of `path`, or of the nearest enclosing thing the file has."""
        while path not in lines:
            path = path[:-1]
        return lines[path]

    if not _VERSION.match(spec.version):
        problems.append((at("version"), f"version {spec.version!r} must be 1-64 characters without spaces"))

    interstitials = {}
    for kind, s in spec.interstitials.items():
        if kind not in KINDS:
            problems.append(
                (at("interstitials", kind), f"unknown interstitial kind '{kind}' (allowed: {', '.join(KINDS)})")
            )
        interstitials[kind] = Interstitial(kind, s.allow_continue, s.description)

    rules: list[Rule] = []
    first_line: dict[str, int] = {}
    for i, r in enumerate(spec.rules):
        who = f"rule '{r.name}'"

        def problem(path: tuple, what: str, i: int = i, who: str = who) -> None:
            problems.append((at("rules", i, *path), f"{who}: {what}"))

        if not _RULE_NAME.match(r.name):
            problem(("name",), "a rule name is lower-case letters, digits and '_', starting with a letter")
        if r.name in first_line:
            problem(("name",), f"duplicate rule name (first at line {first_line[r.name]})")
        first_line.setdefault(r.name, at("rules", i))

        conditions = []
        for j, c in enumerate(r.when or []):
            cpath = ("when", j) if ("rules", i, "when", j) in lines else ("when",)
            prefix = c.at.split(".", 1)[0]
            if c.signal not in SIGNALS:
                problem((*cpath, "signal"), f"unknown signal '{c.signal}' (allowed: {', '.join(SIGNALS)})")
            elif "." not in c.at or prefix not in SIGNALS:
                problem(
                    (*cpath, "at"),
                    f"operating point '{c.at}' must be named '<signal>.<name>', e.g. '{c.signal}.balanced'",
                )
            elif prefix != c.signal:
                problem((*cpath, "at"), f"operating point '{c.at}' is a threshold on '{prefix}', not on '{c.signal}'")
            elif any(c.signal == d.signal for d in conditions):
                problem((*cpath, "signal"), f"two conditions on signal '{c.signal}' in one rule")
            conditions.append(Condition(c.signal, c.at))

        surfaces = _check_surfaces(r.surfaces, problem)
        countries = _check_countries(r.countries, problem)

        actions: list[Action] = []
        for j, a in enumerate(r.actions):
            action = Action(
                a.type, getattr(a, "kind", None), getattr(a, "priority", None), getattr(a, "sla_minutes", None)
            )
            if action.type == "interstitial" and action.kind not in interstitials:
                problem(
                    ("actions", j, "kind"),
                    f"interstitial kind '{action.kind}' is not defined under "
                    f"'interstitials' (defined: {', '.join(interstitials) or 'none'})",
                )
            if action.type == "none" and len(r.actions) > 1:
                problem(("actions", j), "'none' cannot be combined with other actions")
            if any(action.name == b.name for b in actions):
                problem(("actions", j), f"'{action.name}' is listed twice")
            actions.append(action)

        rules.append(
            Rule(r.name, tuple(conditions), surfaces, countries, tuple(actions), at("rules", i), r.description)
        )

    problems += _unreachable(rules) + _sla_order(rules, lines)
    if problems:
        raise PolicyError.from_problems(source, problems)
    return Policy(spec.version, rules, interstitials, source)


def _check_surfaces(values: list[str] | None, problem) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not values:
        problem(("surfaces",), "'surfaces' is empty: leave it out to match every surface")
    seen = []
    for j, v in enumerate(values):
        if v not in SURFACES:
            problem(("surfaces", j), f"unknown surface '{v}' (allowed: {', '.join(SURFACES)})")
        elif v in seen:
            problem(("surfaces", j), f"surface '{v}' is listed twice")
        seen.append(v)
    return tuple(seen)


def _check_countries(values: list[str] | None, problem) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not values:
        problem(("countries",), "'countries' is empty: leave it out to match any country")
    seen = []
    for j, v in enumerate(values):
        if not re.fullmatch(r"[A-Z]{2}", v):
            problem(("countries", j), f"country '{v}' must be an ISO 3166-1 alpha-2 code in capitals, e.g. 'IN'")
        elif v not in _ISO_3166_ALPHA2:
            hint = _COUNTRY_HINTS.get(v)
            more = f" (did you mean '{hint}'?)" if hint else ""
            problem(("countries", j), f"'{v}' is not an ISO 3166-1 alpha-2 country code{more}")
        elif v in seen:
            problem(("countries", j), f"country '{v}' is listed twice")
        seen.append(v)
    return tuple(seen)


def _covers(earlier: tuple[str, ...] | None, later: tuple[str, ...] | None) -> bool:
    return earlier is None or (later is not None and set(later) <= set(earlier))


def _unreachable(rules: list[Rule]) -> list[tuple[int | None, str]]:
    """Rules that can never fire: an earlier rule needs no more conditions and covers their surfaces and countries."""
    problems = []
    for j, later in enumerate(rules):
        for earlier in rules[:j]:
            if (
                set(earlier.conditions) <= set(later.conditions)
                and _covers(earlier.surfaces, later.surfaces)
                and _covers(earlier.countries, later.countries)
            ):
                problems.append(
                    (
                        later.line,
                        f"rule '{later.name}' can never fire: rule '{earlier.name}' (line {earlier.line}) comes first "
                        "and matches everything it matches; put the more specific rule first",
                    )
                )
                break
    return problems


def _sla_order(rules: list[Rule], lines: dict[Path_, int]) -> list[tuple[int | None, str]]:
    """A more urgent priority must not have a longer SLA than a less urgent one: each enqueue is checked against
    the enqueues of earlier rules, and the later one of a disagreeing pair is reported."""
    seen: list[tuple[int, int, Rule]] = []
    problems = []
    for index, rule in enumerate(rules):
        for j, a in enumerate(rule.actions):
            if a.type != "enqueue":
                continue
            for p, sla, other in seen:
                if (p < a.priority and sla > a.sla_minutes) or (p > a.priority and sla < a.sla_minutes):
                    problems.append(
                        (
                            lines.get(("rules", index, "actions", j), rule.line),
                            f"rule '{rule.name}': priority {a.priority} with sla_minutes {a.sla_minutes} disagrees "
                            f"with priority {p} with sla_minutes {sla} in rule '{other.name}' (line {other.line}): "
                            "a more urgent priority needs a shorter or equal SLA",
                        )
                    )
                    break
            seen.append((a.priority, a.sla_minutes, rule))
    return problems
