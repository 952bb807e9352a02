"""The policy engine: the shipped policy, first-match decisions, and line-numbered errors for broken files.

Plain unit tests on signal values: no model, no server, and no texts at all.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from model.operating_points import POINTS
from serve.policy import SURFACES, Action, Decision, Policy, PolicyError, load_policy

SHIPPED = Path(__file__).resolve().parents[2] / "serve" / "policy.yaml"

THRESHOLDS = {
    "at_risk.high_recall": 0.20,
    "at_risk.balanced": 0.50,
    "urgent.high_recall": 0.15,
    "urgent.balanced": 0.45,
    "violating.high_recall": 0.25,
    "violating.balanced": 0.60,
}
AUTHORED = [s for s in SURFACES if s != "search"]


def signals(at_risk: float = 0.0, urgent: float = 0.0, violating: float = 0.0) -> dict[str, float]:
    return {"at_risk": at_risk, "urgent": urgent, "violating": violating}


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(SHIPPED)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the `occurrence`-th line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def load_error(tmp_path: Path, text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    return info.value


SMALL = """\
# a small policy for the tests
version: "test.1"
interstitials:
  author_support: {allow_continue: true}
  search_support: {allow_continue: true}
  viewer_warning: {allow_continue: false}
rules:
  - name: urgent_in
    when: {signal: urgent, at: urgent.balanced}
    countries: [IN, NP]
    actions:
      - {type: interstitial, kind: author_support}
      - {type: enqueue, priority: 1, sla_minutes: 10}
  - name: urgent
    when: {signal: urgent, at: urgent.balanced}
    actions:
      - {type: enqueue, priority: 1, sla_minutes: 15}
  - name: violating
    when: {signal: violating, at: violating.balanced}
    surfaces: [post, comment]
    actions:
      - {type: interstitial, kind: viewer_warning}
      - {type: limit_distribution}
"""


# ----------------------------------------------------------------------------------------------- shipped policy


def test_shipped_policy_loads_and_uses_only_the_models_operating_points(shipped):
    assert shipped.version and shipped.version_tag == f"{shipped.version}+{shipped.content_hash}"
    assert len(shipped.content_hash) == 12
    assert sorted(shipped.kinds) == ["author_support", "search_support", "viewer_warning"]
    shipped.check_operating_points(set(POINTS))  # every point the trainer writes; raises if one is missing
    used = {c.point for r in shipped.rules for c in r.conditions}
    assert used == set(POINTS)


def test_shipped_policy_lets_every_interstitial_continue(shipped):
    assert all(shipped.allows_continue(kind) for kind in shipped.kinds)


@pytest.mark.parametrize("surface", AUTHORED)
def test_urgent_above_balanced_supports_the_author_and_queues_first(shipped, surface):
    d = shipped.decide(signals(at_risk=0.9, urgent=0.8), THRESHOLDS, surface, None)
    assert d.rule == "urgent"
    assert d.action_names == ["interstitial:author_support", "enqueue"]
    enqueue = d.actions[1]
    assert enqueue.priority == 1 and enqueue.sla_minutes <= 15


def test_urgent_on_search_shows_search_support_and_queues_first(shipped):
    d = shipped.decide(signals(at_risk=0.9, urgent=0.8), THRESHOLDS, "search", "IN")
    assert d.rule == "search_urgent"
    assert d.action_names == ["interstitial:search_support", "enqueue"]
    assert d.actions[1].priority == 1


def test_the_threshold_itself_counts_as_reaching_the_point(shipped):
    at = shipped.decide(signals(at_risk=0.9, urgent=0.45), THRESHOLDS, "post", None)
    below = shipped.decide(signals(at_risk=0.9, urgent=0.4499), THRESHOLDS, "post", None)
    assert at.rule == "urgent"
    assert below.rule == "at_risk" and below.actions[-1].priority == 2


def test_urgent_between_its_points_is_queued_but_not_first(shipped):
    d = shipped.decide(signals(at_risk=0.1, urgent=0.3), THRESHOLDS, "chat", None)
    assert d.rule == "possible_intent"
    assert d.action_names == ["interstitial:author_support", "enqueue"]
    assert d.actions[1].priority == 2


@pytest.mark.parametrize("surface", AUTHORED)
def test_at_risk_between_high_recall_and_balanced_offers_support_only(shipped, surface):
    d = shipped.decide(signals(at_risk=0.35, urgent=0.05), THRESHOLDS, surface, None)
    assert d.rule == "possible_at_risk"
    assert d.action_names == ["interstitial:author_support"]


def test_at_risk_between_points_on_search_offers_search_support_only(shipped):
    d = shipped.decide(signals(at_risk=0.35, urgent=0.05), THRESHOLDS, "search", None)
    assert d.rule == "search_at_risk"
    assert d.action_names == ["interstitial:search_support"]


def test_at_risk_above_balanced_is_supported_and_queued(shipped):
    d = shipped.decide(signals(at_risk=0.7, urgent=0.1), THRESHOLDS, "bio", None)
    assert d.rule == "at_risk"
    assert d.action_names == ["interstitial:author_support", "enqueue"]
    assert (d.actions[1].priority, d.actions[1].sla_minutes) == (2, 60)


def test_violating_limits_distribution_warns_viewers_and_queues(shipped):
    d = shipped.decide(signals(violating=0.8), THRESHOLDS, "comment", None)
    assert d.rule == "violating"
    assert d.action_names == ["interstitial:viewer_warning", "limit_distribution", "enqueue"]
    assert "interstitial:author_support" not in d.action_names


def test_violating_and_at_risk_keeps_both_support_and_viewer_protection(shipped):
    d = shipped.decide(signals(at_risk=0.3, violating=0.65), THRESHOLDS, "post", None)
    assert d.rule == "violating_and_at_risk"
    assert {"interstitial:author_support", "interstitial:viewer_warning", "limit_distribution", "enqueue"} == set(
        d.action_names
    )


def test_urgent_and_violating_is_queued_first_with_viewer_protection(shipped):
    d = shipped.decide(
        signals(at_risk=0.5, urgent=0.5, violating=0.5), {**THRESHOLDS, "violating.balanced": 0.4}, "post", None
    )
    assert d.rule == "urgent_and_violating"
    assert "limit_distribution" in d.action_names and "interstitial:author_support" in d.action_names
    assert [a.priority for a in d.actions if a.type == "enqueue"] == [1]


def test_violating_below_balanced_is_only_queued_for_review(shipped):
    d = shipped.decide(signals(violating=0.3), THRESHOLDS, "caption", None)
    assert d.rule == "possible_violating"
    assert d.action_names == ["enqueue"] and d.actions[0].priority == 3


@pytest.mark.parametrize("surface", SURFACES)
def test_nothing_above_any_point_gives_none(shipped, surface):
    d = shipped.decide(signals(at_risk=0.1, urgent=0.05, violating=0.1), THRESHOLDS, surface, "IN")
    assert d.rule is None
    assert d.actions == [Action("none")] and d.action_names == ["none"]
    assert d.policy_version == shipped.version_tag


GRID = [0.0, 0.18, 0.3, 0.47, 0.55, 0.7, 0.95]


def test_shipped_policy_invariants_over_a_grid_of_signals(shipped):
    """No silencing of distress, no author-facing support on a search, one enqueue at most, always a reason."""
    for surface, (a, u, v) in itertools.product(SURFACES, itertools.product(GRID, repeat=3)):
        d = shipped.decide(signals(a, u, v), THRESHOLDS, surface, None)
        names = d.action_names
        assert names, (surface, a, u, v)
        assert (d.rule is None) == (names == ["none"])
        if v < THRESHOLDS["violating.balanced"]:
            assert "limit_distribution" not in names and "interstitial:viewer_warning" not in names
        if surface == "search":
            assert names in (["none"], ["interstitial:search_support"], ["interstitial:search_support", "enqueue"])
        else:
            assert "interstitial:search_support" not in names
        if u >= THRESHOLDS["urgent.balanced"]:
            assert [x.priority for x in d.actions if x.type == "enqueue"] == [1]
        if a >= THRESHOLDS["at_risk.high_recall"] and surface != "search":
            assert "interstitial:author_support" in names
        assert sum(x.type == "enqueue" for x in d.actions) <= 1


# ----------------------------------------------------------------------------------------------- matching


def test_country_rule_matches_only_its_countries(tmp_path):
    policy = load_policy(write(tmp_path, SMALL))
    urgent = signals(urgent=0.9)
    assert policy.decide(urgent, THRESHOLDS, "post", "IN").rule == "urgent_in"
    assert policy.decide(urgent, THRESHOLDS, "post", "np").rule == "urgent_in"  # any case
    assert policy.decide(urgent, THRESHOLDS, "post", "US").rule == "urgent"
    assert policy.decide(urgent, THRESHOLDS, "post", None).rule == "urgent"  # unknown country: general rule
    assert policy.decide(urgent, THRESHOLDS, "post", "IN").actions[1] == Action("enqueue", priority=1, sla_minutes=10)


def test_surface_restriction(tmp_path):
    policy = load_policy(write(tmp_path, SMALL))
    assert policy.decide(signals(violating=0.9), THRESHOLDS, "post", None).rule == "violating"
    assert policy.decide(signals(violating=0.9), THRESHOLDS, "chat", None).rule is None


def test_first_matching_rule_wins_and_order_decides(tmp_path):
    head = 'version: "o.1"\ninterstitials:\n  author_support: {allow_continue: true}\nrules:\n'
    risk = (
        "  - name: risk\n    when: {signal: at_risk, at: at_risk.balanced}\n"
        "    actions: [{type: interstitial, kind: author_support}]\n"
    )
    bad = (
        "  - name: bad\n    when: {signal: violating, at: violating.balanced}\n"
        "    actions: [{type: limit_distribution}]\n"
    )
    both = signals(at_risk=0.9, violating=0.9)
    first = load_policy(write(tmp_path, head + risk + bad, "a.yaml")).decide(both, THRESHOLDS, "post", None)
    second = load_policy(write(tmp_path, head + bad + risk, "b.yaml")).decide(both, THRESHOLDS, "post", None)
    assert (first.rule, first.action_names) == ("risk", ["interstitial:author_support"])
    assert (second.rule, second.action_names) == ("bad", ["limit_distribution"])


def test_rule_without_when_matches_on_surface_and_country_alone(tmp_path):
    text = SMALL.replace(
        "rules:\n",
        "rules:\n  - name: exempt_np_chat\n    surfaces: [chat]\n    countries: [NP]\n    actions: [{type: none}]\n",
    )
    policy = load_policy(write(tmp_path, text))
    d = policy.decide(signals(urgent=0.9), THRESHOLDS, "chat", "NP")
    assert (d.rule, d.action_names) == ("exempt_np_chat", ["none"])
    assert policy.decide(signals(urgent=0.9), THRESHOLDS, "post", "NP").rule == "urgent_in"


def test_all_conditions_of_a_rule_must_hold(shipped):
    # violating_and_at_risk needs both; violating alone falls through to the violating rule
    assert shipped.decide(signals(at_risk=0.1, violating=0.9), THRESHOLDS, "post", None).rule == "violating"


def test_decide_refuses_unknown_surface_and_missing_threshold(shipped):
    with pytest.raises(ValueError, match="unknown surface 'reel'"):
        shipped.decide(signals(), THRESHOLDS, "reel", None)
    partial = {k: v for k, v in THRESHOLDS.items() if k != "urgent.balanced"}
    with pytest.raises(PolicyError, match=r"line \d+: rule 'search_urgent': operating point 'urgent.balanced'"):
        shipped.decide(signals(urgent=0.9), partial, "search", None)


def test_decision_actions_are_a_copy(shipped):
    d = shipped.decide(signals(urgent=0.9), THRESHOLDS, "post", None)
    d.actions.clear()
    assert shipped.decide(signals(urgent=0.9), THRESHOLDS, "post", None).action_names == [
        "interstitial:author_support",
        "enqueue",
    ]


# ----------------------------------------------------------------------------------------------- errors


def test_yaml_syntax_error_names_the_line(tmp_path):
    text = SMALL.replace("surfaces: [post, comment]", "surfaces: [post, comment")
    err = load_error(tmp_path, text)
    assert err.line in (line_of(text, "surfaces: [post"), line_of(text, "surfaces: [post") + 1)
    assert f"policy.yaml line {err.line}: invalid YAML" in str(err)
    assert str(tmp_path) in str(err)  # the file, by its path


def test_tab_indentation_names_the_line(tmp_path):
    text = SMALL.replace("  - name: urgent\n", "\t- name: urgent\n")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "\t- name: urgent")


def test_unknown_action_type(tmp_path):
    text = SMALL.replace("{type: limit_distribution}", "{type: notify_police}")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "notify_police")
    assert "rule 'violating'" in str(err) and "unknown action type 'notify_police'" in str(err)
    assert "allowed: interstitial, enqueue, limit_distribution, none" in str(err)


def test_unknown_surface(tmp_path):
    text = SMALL.replace("surfaces: [post, comment]", "surfaces:\n      - post\n      - reel")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "- reel")
    assert "rule 'violating': unknown surface 'reel' (allowed: post, comment, search, chat, bio, caption)" in str(err)


def test_missing_version(tmp_path):
    err = load_error(tmp_path, SMALL.replace('version: "test.1"\n', ""))
    assert err.line == 1 and "missing required top-level key 'version'" in str(err)


def test_unquoted_numeric_version_is_refused_with_a_hint(tmp_path):
    text = SMALL.replace('version: "test.1"', "version: 3.1")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "version: 3.1") and "quote it" in str(err)


def test_operating_point_missing_from_the_artifact(tmp_path):
    text = SMALL.replace("at: violating.balanced", "at: violating.strict")
    policy = load_policy(write(tmp_path, text))  # a name of the right shape loads; the artifact decides
    policy.check_operating_points(set(THRESHOLDS) | {"violating.strict"})
    with pytest.raises(PolicyError) as info:
        policy.check_operating_points(set(THRESHOLDS))
    assert info.value.line == line_of(text, "- name: violating")
    assert "rule 'violating': operating point 'violating.strict' is not in the model artifact" in str(info.value)


def test_point_of_the_wrong_signal(tmp_path):
    text = SMALL.replace(
        "when: {signal: urgent, at: urgent.balanced}\n    actions",
        "when: {signal: urgent, at: at_risk.balanced}\n    actions",
    )
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "at: at_risk.balanced")
    assert "rule 'urgent': operating point 'at_risk.balanced' is a threshold on 'at_risk', not on 'urgent'" in str(err)


def test_condition_in_list_form_reports_its_own_line(tmp_path):
    text = SMALL.replace(
        "when: {signal: violating, at: violating.balanced}",
        "when:\n      - {signal: violating, at: violating.balanced}\n      - {signal: at_risk, at: balanced}",
    )
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "at: balanced}")
    assert "must be named '<signal>.<name>'" in str(err)


def test_unknown_field_and_missing_enqueue_field(tmp_path):
    text = SMALL.replace("{type: enqueue, priority: 1, sla_minutes: 15}", "{type: enqueue, priority: 1}").replace(
        "  viewer_warning: {allow_continue: false}", "  viewer_warning:\n    allow_continue: false\n    colour: red"
    )
    err = load_error(tmp_path, text)
    assert len(err.problems) == 2  # every problem, in file order
    assert f"line {line_of(text, 'colour: red')}: interstitial 'viewer_warning': unknown field 'colour'" in str(err)
    missing = f"line {line_of(text, 'priority: 1}')}: rule 'urgent': actions[0]: missing required field 'sla_minutes'"
    assert missing in err.problems[1]


def test_priority_out_of_range(tmp_path):
    text = SMALL.replace("priority: 1, sla_minutes: 15", "priority: 0, sla_minutes: 15")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "priority: 0") and "actions[0].priority" in str(err)


def test_duplicate_rule_name(tmp_path):
    text = SMALL.replace("- name: violating", "- name: urgent")
    err = load_error(tmp_path, text)
    urgent_lines = [i for i, line in enumerate(text.splitlines(), 1) if line.endswith("- name: urgent")]
    assert err.line == urgent_lines[1]
    assert f"rule 'urgent': duplicate rule name (first at line {urgent_lines[0]})" in str(err)


def test_rule_after_a_broader_rule_can_never_fire(tmp_path):
    # the general urgent rule first: the country rule after it is unreachable
    text = SMALL.replace("- name: urgent_in", "- name: tmp").replace("- name: urgent\n", "- name: urgent_in2\n")
    text = text.replace("    countries: [IN, NP]\n", "")
    text = text.replace("- name: tmp", "- name: catch_all\n    actions: [{type: none}]\n  - name: tmp")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "- name: tmp")
    assert "rule 'tmp' can never fire: rule 'catch_all'" in err.problems[0]
    assert len(err.problems) == 3  # tmp, urgent_in2 and violating all sit behind the catch-all


def test_interstitial_kind_not_defined(tmp_path):
    text = SMALL.replace("  search_support: {allow_continue: true}\n", "").replace(
        "kind: author_support", "kind: search_support"
    )
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "kind: search_support")
    assert "interstitial kind 'search_support' is not defined" in str(err)


def test_bad_country_codes(tmp_path):
    text = SMALL.replace("countries: [IN, NP]", "countries:\n      - UK\n      - in")
    err = load_error(tmp_path, text)
    assert err.problems[0].endswith("'UK' is not an ISO 3166-1 alpha-2 country code (did you mean 'GB'?)")
    assert f"line {line_of(text, '- UK')}:" in err.problems[0]
    assert f"line {line_of(text, '- in')}:" in err.problems[1] and "in capitals" in err.problems[1]


def test_none_cannot_be_combined(tmp_path):
    text = SMALL.replace("      - {type: limit_distribution}", "      - {type: none}")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "{type: none}") and "'none' cannot be combined" in str(err)


def test_duplicate_yaml_key(tmp_path):
    text = SMALL.replace("    surfaces: [post, comment]\n", "    surfaces: [post]\n    surfaces: [comment]\n")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "surfaces: [comment]")
    assert f"duplicate key 'surfaces' (first at line {line_of(text, 'surfaces: [post]')})" in str(err)


def test_sla_must_not_grow_with_urgency(tmp_path):
    text = SMALL.replace("priority: 1, sla_minutes: 15", "priority: 2, sla_minutes: 5")
    err = load_error(tmp_path, text)
    assert err.line == line_of(text, "priority: 2, sla_minutes: 5")
    assert "a more urgent priority needs a shorter or equal SLA" in str(err)


def test_empty_and_unreadable_files(tmp_path):
    assert load_error(tmp_path, "# only a comment\n").line == 1
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "absent.yaml")


# ----------------------------------------------------------------------------------------------- API shapes


def test_allows_continue(tmp_path):
    policy = load_policy(write(tmp_path, SMALL))
    assert policy.allows_continue("author_support") is True
    assert policy.allows_continue("viewer_warning") is False
    with pytest.raises(KeyError):
        policy.allows_continue("nope")


def test_action_and_decision_to_dict(shipped):
    assert Action("interstitial", kind="author_support").to_dict() == {"type": "interstitial", "kind": "author_support"}
    assert Action("enqueue", priority=1, sla_minutes=15).to_dict() == {
        "type": "enqueue",
        "priority": 1,
        "sla_minutes": 15,
    }
    assert Action("none").to_dict() == {"type": "none"}
    d = shipped.decide(signals(urgent=0.9, at_risk=0.9), THRESHOLDS, "post", None)
    assert d.to_dict() == {
        "actions": [
            {"type": "interstitial", "kind": "author_support"},
            {"type": "enqueue", "priority": 1, "sla_minutes": 15},
        ],
        "rule": "urgent",
        "policy_version": shipped.version_tag,
    }
    nothing = Decision([Action("none")], None, "v+h")
    assert nothing.to_dict() == {"actions": [{"type": "none"}], "rule": None, "policy_version": "v+h"}


def test_policy_to_dict(shipped):
    d = shipped.to_dict()
    json.dumps(d)  # serialisable for the admin endpoint
    assert d["version"] == shipped.version and d["content_hash"] == shipped.content_hash
    assert d["evaluation"] == "first_match" and d["default_actions"] == [{"type": "none"}]
    assert [r["name"] for r in d["rules"]] == [r.name for r in shipped.rules]
    first = d["rules"][0]
    assert set(first) == {"name", "when", "surfaces", "countries", "actions", "description", "line"}
    assert first["when"] == [{"signal": "urgent", "at": "urgent.balanced"}] and first["surfaces"] == ["search"]
    assert d["interstitials"]["search_support"]["allow_continue"] is True


def test_content_hash_tells_same_version_different_content_apart(tmp_path):
    base = load_policy(write(tmp_path, SMALL, "a.yaml"))
    commented = load_policy(write(tmp_path, "# reworded comment\n" + SMALL, "b.yaml"))
    changed = load_policy(write(tmp_path, SMALL.replace("sla_minutes: 15", "sla_minutes: 20"), "c.yaml"))
    assert base.version == changed.version
    assert base.content_hash == commented.content_hash  # comments do not change behaviour
    assert base.content_hash != changed.content_hash and base.version_tag != changed.version_tag
    assert changed.decide(signals(urgent=0.9), THRESHOLDS, "post", None).policy_version == changed.version_tag
