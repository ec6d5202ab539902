"""`cargohold tag ...` and `cargohold immutable ...` against a data dir, as subprocesses.

The data dir is filled through the registry core the way pushes fill it (a manifest put
with its config blob linked), then every command runs as `python -m cargohold`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cargohold.config import load_settings
from cargohold.core.registry import Registry
from cargohold.setup import prepare_storage
from cargohold.stores import open_stores

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
ME = f"cli:{getpass.getuser()}"
NEVER_PUSHED = "sha256:" + "ab" * 32


class Data:
    """A data dir with the registry core open on it, for setting up and checking."""

    def __init__(self, path: Path) -> None:
        self.path = path
        settings = load_settings(None, data_dir=path)
        prepare_storage(settings)
        self.stores = open_stores(settings)
        self.registry = Registry(self.stores.blobs, self.stores.meta, settings.max_manifest_size)

    def push(self, repository: str, tag: str, seed: str, actor: str = "alice") -> str:
        """What a push of a one-config image records; the manifest's digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.stores.meta.link_blob(repository, config_digest, len(config))
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [],
            }
        ).encode()
        result = self.registry.manifests.put(repository, tag, body, MANIFEST, actor=actor)
        assert result.digest == "sha256:" + hashlib.sha256(body).hexdigest()
        return result.digest

    def close(self) -> None:
        self.stores.close()


Run = Callable[..., subprocess.CompletedProcess[str]]


def make_runner(data_dir: Path) -> Run:
    def run(*args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        if code is not None:
            assert result.returncode == code, (
                args,
                result.returncode,
                result.stdout,
                result.stderr,
            )
        return result

    return run


def failures(run: Run, cases: list[tuple[tuple[str, ...], int, str]]) -> list[str]:
    """Run each command; what differs from its expected exit status and stderr message.

    A failing command prints one line on stderr, "error: ...", and nothing on stdout.
    """
    problems = []
    for args, code, message in cases:
        result = run(*args, code=None)
        one_line = result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
        if result.returncode != code or message not in result.stderr or not one_line:
            problems.append(f"{args}: exit {result.returncode} (want {code}), {result.stderr!r}")
        elif result.stdout:
            problems.append(f"{args}: printed {result.stdout!r}")
    return problems


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Data]:
    d = Data(tmp_path / "data")
    yield d
    d.close()


@pytest.fixture
def cli(data: Data) -> Run:
    return make_runner(data.path)


@pytest.fixture
def app(data: Data) -> list[str]:
    """team/app:prod pushed three times (alice, bob, carol), and team/app:dev once."""
    digests = [
        data.push("team/app", "prod", f"v{i}", actor)
        for i, actor in enumerate(["alice", "bob", "carol"])
    ]
    data.push("team/app", "dev", "dev", "dave")
    return digests


# ------------------------------------------------------------------------------------------
# history


def test_history_of_a_tag_lists_every_push_newest_first(cli: Run, app: list[str]) -> None:
    one, two, three = app
    events = as_json(cli("tag", "history", "team/app:prod", "--json"))
    assert [
        (e["tag"], e["action"], e["old_digest"], e["new_digest"], e["via"], e["actor"])
        for e in events
    ] == [
        ("prod", "moved", two, three, "push", "carol"),
        ("prod", "moved", one, two, "push", "bob"),
        ("prod", "created", None, one, "push", "alice"),
    ]
    assert events[0]["id"] > events[1]["id"] > events[2]["id"]
    assert all(e["repository"] == "team/app" for e in events)
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in events)

    table = cli("tag", "history", "team/app:prod").stdout.splitlines()
    assert table[0].split() == ["id", "time", "(UTC)", "action", "old", "→", "new", "via", "actor"]
    newest = table[1].split()
    assert newest[0] == str(events[0]["id"])
    assert newest[3:] == ["moved", two[:19], "→", three[:19], "push", "carol"]
    assert table[3].split()[3:] == ["created", "-", "→", one[:19], "push", "alice"]
    assert three not in "\n".join(table)  # shortened in the table, whole in JSON


def test_history_of_a_repository_limit_and_pages(cli: Run, app: list[str]) -> None:
    events = as_json(cli("tag", "history", "team/app", "--json"))
    assert [(e["tag"], e["actor"]) for e in events] == [
        ("dev", "dave"),
        ("prod", "carol"),
        ("prod", "bob"),
        ("prod", "alice"),
    ]
    table = cli("tag", "history", "team/app").stdout.splitlines()
    assert "tag" in table[0].split() and table[1].split()[3] == "dev"

    first_page = as_json(cli("tag", "history", "team/app:prod", "--limit", "2", "--json"))
    assert [e["actor"] for e in first_page] == ["carol", "bob"]
    rest = as_json(
        cli("tag", "history", "team/app:prod", "--before", str(first_page[-1]["id"]), "--json")
    )
    assert [e["actor"] for e in rest] == ["alice"]
    assert as_json(cli("tag", "history", "team/app:never", "--json")) == []
    assert cli("tag", "history", "team/app:never").stdout.strip() == "(none)"


# ------------------------------------------------------------------------------------------
# rollback


def test_rollback_without_to_undoes_the_latest_change(cli: Run, app: list[str]) -> None:
    _, two, three = app
    out = cli("tag", "rollback", "team/app:prod").stdout
    assert out.strip() == f"team/app:prod now {two} (was {three})"
    assert cli("tag", "resolve", "team/app:prod").stdout == f"{two}\n"
    latest = as_json(cli("tag", "history", "team/app:prod", "--limit", "1", "--json"))[0]
    assert (latest["action"], latest["old_digest"], latest["new_digest"]) == ("moved", three, two)
    assert (latest["via"], latest["actor"]) == ("rollback", ME)

    # The rollback is the latest change now: rolling back again undoes it.
    again = as_json(cli("tag", "rollback", "team/app:prod", "--json"))
    assert again["digest"] == three and again["previous_digest"] == two
    assert again["changed"] is True and again["event"]["via"] == "rollback"

    audit = as_json(cli("audit", "--action", "tag_rollback", "--json"))
    assert len(audit) == 2
    assert audit[0]["actor"] == ME and audit[0]["target"] == "team/app"
    assert audit[0]["detail"]["tag"] == "prod" and audit[0]["detail"]["digest"] == three


def test_rollback_to_a_digest_an_entry_or_a_time(cli: Run, app: list[str]) -> None:
    one, two, three = app
    history = as_json(cli("tag", "history", "team/app:prod", "--json"))
    first, second = history[2], history[1]

    assert as_json(cli("tag", "rollback", "team/app:prod", "--to", one, "--json"))["digest"] == one
    entry = as_json(cli("tag", "rollback", "team/app:prod", "--to", str(second["id"]), "--json"))
    assert (entry["digest"], entry["previous_digest"]) == (two, one)

    # An ISO 8601 time: where the tag pointed then. In UTC ...
    at_first = datetime.fromisoformat(first["at"])
    out = cli("tag", "rollback", "team/app:prod", "--to", first["at"]).stdout
    assert out.strip() == f"team/app:prod now {one} (was {two})"
    cli("tag", "rollback", "team/app:prod", "--to", three)
    # ... in another zone (the same moment), and without a zone (UTC).
    elsewhere = at_first.astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert (
        as_json(cli("tag", "rollback", "team/app:prod", "--to", elsewhere, "--json"))["digest"]
        == one
    )
    cli("tag", "rollback", "team/app:prod", "--to", three)
    naive = at_first.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    assert (
        as_json(cli("tag", "rollback", "team/app:prod", "--to", naive, "--json"))["digest"] == one
    )

    # Already there: nothing changes, nothing is recorded.
    before = as_json(cli("tag", "history", "team/app:prod", "--json"))
    same = cli("tag", "rollback", "team/app:prod", "--to", one)
    assert same.stdout.strip() == f"team/app:prod already points at {one}; nothing changed"
    unchanged = as_json(cli("tag", "rollback", "team/app:prod", "--to", one, "--json"))
    assert unchanged["changed"] is False and unchanged["event"] is None
    assert as_json(cli("tag", "history", "team/app:prod", "--json")) == before


def test_rollback_restores_a_deleted_tag(cli: Run, data: Data, app: list[str]) -> None:
    three = app[2]
    data.registry.manifests.delete("team/app", "prod", actor="erin")
    cli("tag", "resolve", "team/app:prod", code=1)
    out = cli("tag", "rollback", "team/app:prod").stdout
    assert out.strip() == f"team/app:prod now {three} (the tag did not exist)"
    assert cli("tag", "resolve", "team/app:prod").stdout.strip() == three
    actions = [e["action"] for e in as_json(cli("tag", "history", "team/app:prod", "--json"))]
    assert actions[:2] == ["created", "deleted"]


def test_rollback_refuses_a_bad_to(cli: Run, app: list[str]) -> None:
    prod = ("tag", "rollback", "team/app:prod", "--to")
    cases = [
        ((*prod, "yesterday"), 2, "is not a digest, a history entry number or an ISO 8601 time"),
        ((*prod, "2026-13-45T99:00:00Z"), 2, "ISO 8601 time"),
        ((*prod, "sha256:abc"), 2, "invalid sha256 digest"),
        ((*prod, "md5:0123"), 2, "unsupported digest algorithm"),
        ((*prod, NEVER_PUSHED), 1, NEVER_PUSHED),
        ((*prod, "999999"), 1, "history entry 999999 is not an entry of team/app:prod"),
        ((*prod, "2001-01-01T00:00:00Z"), 1, "team/app:prod did not exist at 2001-01-01T00:00:00Z"),
    ]
    assert failures(cli, cases) == []
    assert cli("tag", "resolve", "team/app:prod").stdout.strip() == app[2]
    assert len(as_json(cli("tag", "history", "team/app:prod", "--json"))) == 3


def test_rollback_to_an_entry_of_another_tag_or_a_deletion_is_refused(
    cli: Run, data: Data, app: list[str]
) -> None:
    dev_entry = as_json(cli("tag", "history", "team/app:dev", "--json"))[0]["id"]
    result = cli("tag", "rollback", "team/app:prod", "--to", str(dev_entry), code=1)
    assert f"history entry {dev_entry} is not an entry of team/app:prod" in result.stderr
    data.registry.manifests.delete("team/app", "dev")
    deletion = as_json(cli("tag", "history", "team/app:dev", "--json"))[0]["id"]
    result = cli("tag", "rollback", "team/app:dev", "--to", str(deletion), code=1)
    assert "deleted the tag" in result.stderr


def test_rollback_of_a_tag_with_one_version_or_a_deleted_manifest(
    cli: Run, data: Data, app: list[str]
) -> None:
    result = cli("tag", "rollback", "team/app:dev", code=1)
    assert "team/app:dev has no earlier version to roll back to" in result.stderr
    data.registry.manifests.delete("team/app", app[1])  # the manifest itself, not a tag
    result = cli("tag", "rollback", "team/app:prod", "--to", app[1], code=1)
    assert app[1] in result.stderr and "push it again" in result.stderr


# ------------------------------------------------------------------------------------------
# add (retag), resolve, list


def test_add_a_tag_by_digest_in_the_same_repository(cli: Run, app: list[str]) -> None:
    one = app[0]
    out = cli("tag", "add", f"team/app@{one}", "v1.2.3").stdout
    assert out.strip() == f"team/app:v1.2.3 now {one} (the tag did not exist)"
    assert cli("tag", "resolve", "team/app:v1.2.3").stdout == f"{one}\n"
    latest = as_json(cli("tag", "history", "team/app:v1.2.3", "--json"))[0]
    assert (latest["action"], latest["via"], latest["actor"]) == ("created", "retag", ME)
    # Moving an existing tag says what it named before.
    moved = as_json(cli("tag", "add", "team/app:dev", "v1.2.3", "--json"))
    assert moved["previous_digest"] == one and moved["changed"] is True
    assert moved["event"]["action"] == "moved" and moved["source"] == "team/app:dev"
    audit = as_json(cli("audit", "--action", "tag_add", "--json"))
    assert [a["detail"]["source"] for a in audit] == ["team/app:dev", f"team/app@{one}"]


def test_add_a_tag_in_another_repository_of_the_namespace(
    cli: Run, data: Data, app: list[str]
) -> None:
    three = app[2]
    result = as_json(cli("tag", "add", "team/app:prod", "team/other:v1.2.3", "--json"))
    assert result["repository"] == "team/other" and result["digest"] == three
    # The manifest and its config blob are in team/other now, without any upload.
    record = data.registry.manifests.get("team/other", "v1.2.3")
    assert record.digest == three
    config = json.loads(record.content)["config"]
    assert data.stores.meta.blob_size("team/other", config["digest"]) == config["size"]
    [listed] = as_json(cli("tag", "list", "team/other", "--json"))
    assert (listed["tag"], listed["digest"], listed["size"]) == ("v1.2.3", three, record.size)


def test_add_refusals(cli: Run, app: list[str]) -> None:
    other_ns = cli("tag", "add", "team/app:prod", "elsewhere/app:v1", code=1)
    assert "different namespaces" in other_ns.stderr
    missing = cli("tag", "add", f"team/app@{NEVER_PUSHED}", "v1", code=1)
    assert f"team/app has no manifest {NEVER_PUSHED}" in missing.stderr
    no_tag = cli("tag", "add", "team/app:nope", "v1", code=1)
    assert "team/app has no manifest nope" in no_tag.stderr
    assert "must name a tag" in cli("tag", "add", "team/app:prod", "team/other", code=2).stderr
    assert "say what to tag" in cli("tag", "add", "team/app", "v1", code=2).stderr
    assert "invalid tag" in cli("tag", "add", "team/app:prod", ".bad", code=2).stderr


def test_resolve_prints_only_the_digest(cli: Run, app: list[str]) -> None:
    assert cli("tag", "resolve", "team/app:prod").stdout == f"{app[2]}\n"
    record = as_json(cli("tag", "resolve", "team/app:prod", "--json"))
    assert set(record) == {"repository", "tag", "digest", "media_type", "size", "updated_at"}
    assert (record["repository"], record["tag"], record["digest"]) == ("team/app", "prod", app[2])
    assert record["media_type"] == MANIFEST and record["size"] > 100


def test_list_tags(cli: Run, app: list[str]) -> None:
    listed = as_json(cli("tag", "list", "team/app", "--json"))
    assert [(t["tag"], t["digest"]) for t in listed] == [
        ("dev", listed[0]["digest"]),
        ("prod", app[2]),
    ]
    assert all(t["size"] > 100 and t["updated_at"].endswith("Z") for t in listed)
    rows = [line.split() for line in cli("tag", "list", "team/app").stdout.splitlines()]
    assert rows[0] == ["tag", "digest", "size", "updated", "(UTC)"]
    assert rows[2][:3] == ["prod", app[2][:19], str(listed[1]["size"])]


# ------------------------------------------------------------------------------------------
# immutable-tag rules


def test_immutable_rules_protect_tags_until_removed(cli: Run, data: Data, app: list[str]) -> None:
    three = app[2]
    added = as_json(cli("immutable", "add", "team", "prod", "--repository", "team/app", "--json"))
    assert (added["namespace"], added["repository"], added["pattern"]) == (
        "team",
        "team/app",
        "prod",
    )
    assert added["created_by"] == ME
    text = cli("immutable", "add", "team", "v*").stdout
    assert text.strip().startswith("added immutable-tag rule ") and "'v*'" in text
    rules = as_json(cli("immutable", "list", "team", "--json"))
    assert [(r["pattern"], r["repository"]) for r in rules] == [("prod", "team/app"), ("v*", None)]
    table = cli("immutable", "list", "team").stdout
    assert "(all)" in table and "team/app" in table

    refused = cli("tag", "rollback", "team/app:prod", code=1)
    assert f"immutable-tag rule {added['id']}" in refused.stderr
    assert cli("tag", "add", "team/app:dev", "prod", code=1).returncode == 1
    cli("tag", "add", "team/app:dev", "v1")  # creating a matching tag is allowed ...
    assert (
        "is immutable" in cli("tag", "add", "team/app:prod", "v1", code=1).stderr
    )  # ... moving not
    assert cli("tag", "resolve", "team/app:prod").stdout.strip() == three

    removed = cli("immutable", "remove", "team", str(added["id"])).stdout
    assert removed.strip() == f"removed immutable-tag rule {added['id']} ('prod' in team/app)"
    assert as_json(cli("tag", "rollback", "team/app:prod", "--json"))["digest"] == app[1]
    actions = [a["action"] for a in as_json(cli("audit", "--json"))]
    assert actions[:2] == ["tag_rollback", "immutable_remove"]
    assert actions.count("immutable_add") == 2


def test_immutable_errors(cli: Run) -> None:
    cli("immutable", "add", "team", "v*")
    cases = [
        (("immutable", "add", "team", "v*"), 1, "the rule 'v*' exists already"),
        (("immutable", "add", "team/app", "x"), 2, "a namespace has no '/'"),
        (("immutable", "add", "team", "x", "--repository", "b/app"), 2, "is not in namespace team"),
        (("immutable", "add", "team", "bad pattern"), 2, "invalid tag pattern"),
        (("immutable", "remove", "team", "999"), 1, "namespace team has no immutable-tag rule 999"),
        (("immutable", "remove", "other", "1"), 1, "namespace other has no immutable-tag rule 1"),
        (("immutable", "list", "Team"), 2, "invalid repository name 'Team'"),
    ]
    assert failures(cli, cases) == []
    assert len(as_json(cli("immutable", "list", "team", "--json"))) == 1
    usage = cli("immutable", "remove", "team", "x", code=2)  # click's own usage error
    assert "Invalid value for 'rule_id'" in usage.stderr


# ------------------------------------------------------------------------------------------
# Errors shared by every command, and help


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    data = Data(tmp_path_factory.mktemp("seeded") / "data")
    data.push("team/app", "prod", "one")
    data.close()
    return make_runner(data.path)


def test_errors_are_one_clear_line(seeded: Run) -> None:
    cases = [
        (("tag", "history", "team/ghost:prod"), 1, "repository team/ghost is not known"),
        (("tag", "history", "team/ghost"), 1, "repository team/ghost is not known"),
        (("tag", "resolve", "team/ghost:prod"), 1, "repository team/ghost is not known"),
        (("tag", "list", "team/ghost"), 1, "repository team/ghost is not known"),
        (("tag", "rollback", "team/ghost:prod"), 1, "repository team/ghost is not known"),
        (("tag", "rollback", "team/ghost:prod", "--to", NEVER_PUSHED), 1, "team/ghost is not"),
        (("tag", "resolve", "team/app:nope"), 1, "team/app has no tag nope"),
        (("tag", "rollback", "team/app:nope"), 1, "team/app has no tag nope"),
        (("tag", "resolve", "Team/App:prod"), 2, "invalid repository name 'Team/App'"),
        (("tag", "resolve", "team/app:-x"), 2, "invalid tag '-x'"),
        (("tag", "resolve", "team/app@sha256:12"), 2, "invalid sha256 digest"),
        (("tag", "resolve", "team/app"), 2, "must name a tag: team/app:TAG"),
        (("tag", "resolve", f"team/app@{NEVER_PUSHED}"), 2, "must name a tag, not a digest"),
        (("tag", "resolve", f"team/app:prod@{NEVER_PUSHED}"), 2, "both a tag and a digest"),
        (("tag", "resolve", "localhost:5000/team/app:prod"), 2, "registry host"),
        (("tag", "history", f"team/app@{NEVER_PUSHED}"), 2, "history is kept per tag"),
        (("tag", "list", "team/app:prod"), 2, "give only the repository: team/app"),
    ]
    assert failures(seeded, cases) == []
    usage = seeded("tag", "history", "team/app", "--limit", "0", code=2)
    assert "--limit" in usage.stderr


@pytest.mark.parametrize(
    ("command", "explains"),
    [
        (("tag",), "history of every change"),
        (("tag", "history"), "newest first"),
        (("tag", "rollback"), "earlier manifest"),
        (("tag", "add"), "without uploading"),
        (("tag", "resolve"), "only the digest"),
        (("tag", "list"), "digests, sizes"),
        (("immutable",), "can never be moved"),
        (("immutable", "add"), "immutable"),
        (("immutable", "list"), "rules"),
        (("immutable", "remove"), "Remove an immutable-tag rule"),
    ],
)
def test_help_explains_every_command(command: tuple[str, ...], explains: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert explains in result.stdout
    if len(command) == 2:
        assert "--data-dir" in result.stdout and "--config" in result.stdout
    if command[-1] in ("history", "rollback", "resolve", "list"):
        assert "--json" in result.stdout
