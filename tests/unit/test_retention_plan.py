"""The retention planner: given tags with push and pull times, exactly the expected set stays.

Hand-made inputs only (no store): the planner is a pure function of the policies, the
tags, the pull times, the immutable-tag rules and the moment.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from cargohold.core.retention import Plan, PolicyInvalid, check_keep, plan_retention
from cargohold.storage.meta import ImmutableRule, TagRecord
from cargohold.storage.meta.base import RetentionPolicy

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def dg(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def tag(name: str, pushed_days_ago: float, image: str | None = None) -> TagRecord:
    """A tag pushed `pushed_days_ago` days before NOW, naming the image `image` (or its own)."""
    return TagRecord(
        name=name,
        digest=dg(image or name),
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=100,
        updated_at=days_ago(pushed_days_ago),
    )


def policy(
    pattern: str = "*",
    keep_last: int | None = None,
    keep_days: int | None = None,
    namespace: str = "team",
    repository: str = "",
    policy_id: int | None = None,
) -> RetentionPolicy:
    return RetentionPolicy(
        id=policy_id if policy_id is not None else next(_ids),
        namespace=namespace,
        repository=repository,
        tag_pattern=pattern,
        keep_last=keep_last,
        keep_days=keep_days,
        created_by="test",
        created_at=days_ago(100),
    )


def rule(pattern: str, namespace: str = "team", repository: str = "") -> ImmutableRule:
    return ImmutableRule(next(_ids), namespace, repository, pattern, "test", days_ago(100))


def plan(policies, tags, pulls=None, rules=(), now=NOW) -> Plan:
    return plan_retention(list(policies), tags, pulls or {}, list(rules), now)


def kept(result: Plan, repository: str = "team/app") -> set[str]:
    return {t for r, t in result.kept if r == repository}


def removed(result: Plan, repository: str = "team/app") -> set[str]:
    return {t for r, t in result.removed if r == repository}


# -- keep_last
def test_keep_last_keeps_exactly_the_most_recently_pushed() -> None:
    tags = {"team/app": [tag(f"v{i}", pushed_days_ago=10 - i) for i in range(1, 7)]}
    result = plan([policy("v*", keep_last=3)], tags)
    assert kept(result) == {"v4", "v5", "v6"}
    assert removed(result) == {"v1", "v2", "v3"}


def test_push_time_counts_not_the_name() -> None:
    # v9 was pushed first, v10 last: names in any order say nothing about recency.
    tags = {"team/app": [tag("v10", 1), tag("v9", 5), tag("v2", 3), tag("v1", 2)]}
    result = plan([policy("v*", keep_last=2)], tags)
    assert kept(result) == {"v10", "v1"}
    assert removed(result) == {"v9", "v2"}


def test_ties_in_push_time_rank_by_name_in_ascii_order() -> None:
    # One push with several tags sets them at the same moment.
    tags = {
        "team/app": [
            tag("newest", 1),
            tag("b", 2),
            tag("a", 2),
            tag("C", 2),  # ASCII: upper case sorts before lower case
            tag("c", 2),
            tag("old", 9),
        ]
    }
    assert kept(plan([policy(keep_last=3)], tags)) == {"newest", "C", "a"}
    assert kept(plan([policy(keep_last=4)], tags)) == {"newest", "C", "a", "b"}
    # Deterministic: the order the store lists them in does not matter.
    shuffled = {"team/app": list(reversed(tags["team/app"]))}
    assert kept(plan([policy(keep_last=3)], shuffled)) == {"newest", "C", "a"}


def test_keep_last_zero_removes_every_matching_tag() -> None:
    tags = {"team/app": [tag("dev-1", 0), tag("dev-2", 0.001), tag("v1", 50)]}
    result = plan([policy("dev-*", keep_last=0)], tags)
    assert kept(result) == set()
    assert removed(result) == {"dev-1", "dev-2"}
    assert ("team/app", "v1") not in {(v.repository, v.tag) for v in result.verdicts}


def test_keep_last_larger_than_the_tags_keeps_all() -> None:
    tags = {"team/app": [tag("a", 100), tag("b", 200)]}
    assert kept(plan([policy(keep_last=10)], tags)) == {"a", "b"}


def test_keep_last_counts_per_repository() -> None:
    tags = {
        "team/app": [tag("1", 1), tag("2", 2), tag("3", 3)],
        "team/web": [tag("1", 30), tag("2", 40), tag("3", 50)],
    }
    result = plan([policy(keep_last=1)], tags)
    assert result.kept == {("team/app", "1"), ("team/web", "1")}
    assert result.removed == {
        ("team/app", "2"),
        ("team/app", "3"),
        ("team/web", "2"),
        ("team/web", "3"),
    }


# -- keep_days: pushes and pulls
def test_keep_days_keeps_recent_pushes_including_the_boundary() -> None:
    tags = {
        "team/app": [
            tag("fresh", 0),
            tag("week", 7),  # exactly at the cutoff: within 7 days
            tag("older", 7.0001),
            tag("ancient", 400),
        ]
    }
    result = plan([policy(keep_days=7)], tags)
    assert kept(result) == {"fresh", "week"}
    assert removed(result) == {"older", "ancient"}


def test_keep_days_zero_keeps_only_what_happens_at_this_moment() -> None:
    tags = {"team/app": [tag("now", 0), tag("second-ago", 1 / 86400)]}
    assert kept(plan([policy(keep_days=0)], tags)) == {"now"}


def test_a_recent_pull_by_tag_name_keeps_an_old_tag() -> None:
    tags = {"team/app": [tag("stable", 90), tag("unused", 90)]}
    pulls = {"team/app": {"stable": days_ago(2)}}
    result = plan([policy(keep_days=30)], tags, pulls)
    assert kept(result) == {"stable"}
    assert removed(result) == {"unused"}
    assert result.verdict("team/app", "stable").pulled_at == days_ago(2)
    assert result.verdict("team/app", "unused").pulled_at is None


def test_a_recent_pull_of_the_digest_keeps_the_tag() -> None:
    tags = {
        "team/app": [
            tag("by-digest", 90, image="one"),  # someone pulled app@sha256:one
            tag("via-other-tag", 90, image="two"),  # someone pulled app:alias, also two
            tag("alias", 90, image="two"),
            tag("unpulled", 90, image="three"),
        ]
    }
    pulls = {"team/app": {dg("one"): days_ago(1), "alias": days_ago(3), dg("two"): days_ago(3)}}
    result = plan([policy(keep_days=30)], tags, pulls)
    assert kept(result) == {"by-digest", "via-other-tag", "alias"}
    assert removed(result) == {"unpulled"}


def test_old_pulls_and_pulls_elsewhere_do_not_keep() -> None:
    tags = {"team/app": [tag("a", 90), tag("b", 90)], "team/web": [tag("a", 90)]}
    pulls = {
        "team/app": {"a": days_ago(31), dg("a"): days_ago(45)},  # too long ago
        "team/web": {"b": days_ago(1)},  # same tag name, another repository
        "other/app": {"a": days_ago(1), dg("b"): days_ago(1)},
    }
    result = plan([policy(keep_days=30)], tags, pulls)
    assert result.kept == set()
    assert result.removed == {("team/app", "a"), ("team/app", "b"), ("team/web", "a")}
    # The latest pull is reported, by name or digest, whichever is newer.
    assert result.verdict("team/app", "a").pulled_at == days_ago(31)


def test_pulls_count_only_with_keep_days() -> None:
    tags = {"team/app": [tag("new", 1), tag("old", 90)]}
    pulls = {"team/app": {"old": days_ago(0)}}
    assert kept(plan([policy(keep_last=1)], tags, pulls)) == {"new"}


def test_keep_last_and_keep_days_together_keep_either() -> None:
    tags = {"team/app": [tag(f"b{i}", i * 10) for i in range(6)]}  # 0, 10, ... 50 days
    pulls = {"team/app": {"b5": days_ago(3)}}
    result = plan([policy(keep_last=2, keep_days=25)], tags, pulls)
    # b0, b1: most recent two; b2: pushed 20 days ago; b5: pulled 3 days ago.
    assert kept(result) == {"b0", "b1", "b2", "b5"}
    assert removed(result) == {"b3", "b4"}


# -- patterns and scope
def test_tags_matching_no_policy_are_untouched_and_take_no_place() -> None:
    tags = {
        "team/app": [
            tag("latest", 0),  # newest, but not v*: it does not use up a keep_last place
            tag("v1", 5),
            tag("v2", 4),
            tag("v3", 3),
            tag("feature-x", 300),
        ]
    }
    result = plan([policy("v*", keep_last=2)], tags)
    assert kept(result) == {"v2", "v3"}
    assert removed(result) == {"v1"}
    decided = {v.tag for v in result.verdicts}
    assert decided == {"v1", "v2", "v3"}


@pytest.mark.parametrize(
    ("pattern", "expected_removed"),
    [
        ("v*", {"v1", "v1.1", "v2-rc"}),
        ("v?", {"v1"}),
        ("v[0-9].*", {"v1.1"}),
        ("*-rc", {"v2-rc"}),
        ("latest", {"latest"}),
        ("nothing*", set()),
    ],
)
def test_glob_patterns(pattern: str, expected_removed: set[str]) -> None:
    tags = {"team/app": [tag(n, 50) for n in ("v1", "v1.1", "v2-rc", "latest", "V1")]}
    result = plan([policy(pattern, keep_last=0)], tags)
    assert removed(result) == expected_removed
    assert kept(result) == set()


def test_a_repository_policy_applies_to_that_repository_only() -> None:
    tags = {
        "team/app": [tag("a", 50), tag("b", 60)],
        "team/web": [tag("a", 50), tag("b", 60)],
        "team/app/sub": [tag("a", 50)],
    }
    result = plan([policy(keep_last=1, repository="team/app")], tags)
    assert result.kept == {("team/app", "a")}
    assert result.removed == {("team/app", "b")}


def test_a_namespace_policy_applies_to_its_namespace_only() -> None:
    tags = {
        "team": [tag("x", 50)],  # a one-component repository is its own namespace
        "team/app": [tag("x", 50)],
        "team/a/b": [tag("x", 50)],
        "teamx/app": [tag("x", 50)],
        "other/team": [tag("x", 50)],
    }
    result = plan([policy(keep_days=1)], tags)
    assert result.removed == {("team", "x"), ("team/app", "x"), ("team/a/b", "x")}
    assert result.kept == set()


# -- several policies: keep wins
def test_a_tag_goes_only_if_every_policy_that_matches_would_remove_it() -> None:
    everything = policy("*", keep_last=1, policy_id=1)
    releases = policy("v*", keep_days=30, policy_id=2)
    tags = {
        "team/app": [
            tag("dev-new", 0),
            tag("dev-old", 100),
            tag("v1", 100),  # both would remove it
            tag("v2", 10),  # * would remove it, v* keeps it: kept
        ]
    }
    result = plan([everything, releases], tags)
    assert kept(result) == {"dev-new", "v2"}
    assert removed(result) == {"dev-old", "v1"}
    assert result.verdict("team/app", "v1").policies == (1, 2)
    assert result.verdict("team/app", "dev-old").policies == (1,)
    assert result.verdict("team/app", "v2").reasons == ("policy 2: pushed within 30 days",)


def test_each_policy_ranks_its_own_matching_tags() -> None:
    # keep the last 1 of everything and the last 2 release-*: each ranks only its matches.
    tags = {
        "team/app": [
            tag("nightly", 1),
            tag("release-3", 2),
            tag("release-2", 3),
            tag("release-1", 4),
            tag("other", 5),
        ]
    }
    result = plan([policy("*", keep_last=1), policy("release-*", keep_last=2)], tags)
    assert kept(result) == {"nightly", "release-3", "release-2"}
    assert removed(result) == {"release-1", "other"}


def test_a_repository_policy_and_a_namespace_policy_combine() -> None:
    tags = {
        "team/app": [tag("a", 1), tag("b", 2), tag("c", 3)],
        "team/web": [tag("a", 1), tag("b", 2), tag("c", 3)],
    }
    result = plan([policy(keep_last=1), policy(keep_last=2, repository="team/app")], tags)
    assert result.kept == {("team/app", "a"), ("team/app", "b"), ("team/web", "a")}
    assert result.removed == {("team/app", "c"), ("team/web", "b"), ("team/web", "c")}


# -- immutable tags
def test_immutable_tags_are_never_removed() -> None:
    tags = {"team/app": [tag("v1.0", 300), tag("v1.1", 200), tag("dev", 100)]}
    result = plan([policy(keep_last=0)], tags, rules=[rule("v*")])
    assert kept(result) == {"v1.0", "v1.1"}
    assert removed(result) == {"dev"}
    assert "immutable-tag rule" in result.verdict("team/app", "v1.0").reasons[0]


def test_immutable_tags_still_take_keep_last_places() -> None:
    tags = {"team/app": [tag("v2", 1), tag("dev-2", 2), tag("dev-1", 3)]}
    result = plan([policy(keep_last=1)], tags, rules=[rule("v*")])
    assert kept(result) == {"v2"}
    assert removed(result) == {"dev-2", "dev-1"}


def test_a_rule_of_another_repository_does_not_protect() -> None:
    tags = {"team/app": [tag("v1", 10)], "team/web": [tag("v1", 10)]}
    result = plan([policy(keep_last=0)], tags, rules=[rule("v*", repository="team/web")])
    assert result.kept == {("team/web", "v1")}
    assert result.removed == {("team/app", "v1")}


# -- the whole picture
def test_given_tags_with_times_the_kept_set_is_exactly_the_expected_one() -> None:
    policies = [
        policy("*", keep_last=3, policy_id=10),  # team, every repository
        policy("v*", keep_days=60, policy_id=11),  # releases pushed/pulled in 60 days
        policy("pr-*", keep_last=0, repository="team/app", policy_id=12),
    ]
    tags = {
        "team/app": [
            tag("latest", 0.5, image="m9"),
            tag("main", 1, image="m8"),
            tag("pr-17", 1.5, image="m7"),  # * keeps it (3rd newest), pr-* would not
            tag("pr-16", 2, image="m6"),
            tag("v3.0", 20, image="m5"),
            tag("v2.0", 70, image="m4"),  # old, but pulled last week
            tag("v1.0", 400, image="m3"),  # old, never pulled: goes
            tag("v0.9", 500, image="m2"),  # immutable
            tag("stable", 80, image="m4"),  # names the pulled image
            tag("nightly-1", 90, image="m1"),
        ],
        "team/web": [
            tag("a", 3),
            tag("b", 3),  # same moment as a: a ranks first
            tag("c", 3),
            tag("d", 3),
            tag("v9", 61),
        ],
        "team": [tag("only", 999)],
        "guests/app": [tag("x", 999)],  # no policy for guests
    }
    pulls = {"team/app": {"v2.0": days_ago(6), dg("m4"): days_ago(6)}}
    rules = [rule("v0.*")]
    result = plan(policies, tags, pulls, rules)
    assert result.kept == {
        ("team/app", "latest"),
        ("team/app", "main"),
        ("team/app", "pr-17"),
        ("team/app", "v3.0"),
        ("team/app", "v2.0"),
        ("team/app", "v0.9"),
        ("team/web", "a"),
        ("team/web", "b"),
        ("team/web", "c"),
        ("team", "only"),
    }
    assert result.removed == {
        ("team/app", "pr-16"),
        ("team/app", "v1.0"),
        ("team/app", "stable"),  # pulled recently through v2.0, but only * applies: 3 newest
        ("team/app", "nightly-1"),
        ("team/web", "d"),
        ("team/web", "v9"),
    }
    verdict = result.verdict("team/app", "v1.0")
    assert (verdict.keep, verdict.reasons, verdict.policies) == (False, (), (10, 11))
    assert result.verdict("team/app", "pr-16").policies == (10, 12)
    assert result.verdict("team/app", "latest").reasons == (
        "policy 10: #1 of the 3 most recently pushed",
    )
    assert set(result.verdict("team/app", "v2.0").reasons) == {"policy 11: pulled within 60 days"}
    assert not any(v.repository == "guests/app" for v in result.verdicts)
    # Verdicts come in a stable order: by repository, then tag name.
    order = [(v.repository, v.tag) for v in result.verdicts]
    assert order == sorted(order)


def test_no_policies_or_no_tags_plan_nothing() -> None:
    assert plan([], {"team/app": [tag("a", 1)]}).verdicts == ()
    assert plan([policy(keep_last=0)], {}).verdicts == ()


# -- invariants over random inputs
def test_more_generous_policies_never_remove_more() -> None:
    rng = random.Random(20261130)
    for _ in range(200):
        names = rng.sample(["a", "b", "c", "v1", "v2", "v3", "dev", "x.y", "rc-1"], 6)
        tags = {"team/app": [tag(n, rng.choice([0, 1, 5, 5, 30, 90, 400])) for n in names]}
        pulls = {"team/app": {rng.choice(names): days_ago(rng.choice([0, 10, 100]))}}
        pattern = rng.choice(["*", "v*", "?", "[a-c]"])
        keep_last = rng.randint(0, 7)
        keep_days = rng.choice([None, 0, 7, 60])
        rules = [rule("v1")] if rng.random() < 0.5 else []
        base = plan([policy(pattern, keep_last, keep_days)], tags, pulls, rules)
        more_last = plan([policy(pattern, keep_last + 1, keep_days)], tags, pulls, rules)
        more_days = plan([policy(pattern, keep_last, (keep_days or 0) + 30)], tags, pulls, rules)
        assert more_last.removed <= base.removed
        assert more_days.removed <= base.removed
        assert base.kept | base.removed == {
            ("team/app", n) for n in names if fnmatch.fnmatchcase(n, pattern)
        }
        assert not base.kept & base.removed
        if rules:
            assert ("team/app", "v1") not in base.removed
        # A second policy only ever keeps more of what the first one decides.
        both = plan([policy(pattern, keep_last, keep_days), policy("*", 1)], tags, pulls, rules)
        assert base.kept <= both.kept
        assert {k for k in both.removed if k in base.kept | base.removed} <= base.removed


# -- validation
@pytest.mark.parametrize(
    ("keep_last", "keep_days"),
    [(None, None), (-1, None), (None, -1), (1, -1), (10**7, None), (None, 10**6)],
)
def test_policies_need_a_sensible_keep(keep_last: int | None, keep_days: int | None) -> None:
    with pytest.raises(PolicyInvalid):
        check_keep(keep_last, keep_days)


@pytest.mark.parametrize(("keep_last", "keep_days"), [(0, None), (None, 0), (5, 30), (0, 0)])
def test_valid_keeps(keep_last: int | None, keep_days: int | None) -> None:
    check_keep(keep_last, keep_days)
