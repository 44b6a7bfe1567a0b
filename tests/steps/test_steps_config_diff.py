"""The configuration diff (pure): paths, named list items, whole-object changes, secrets."""

from __future__ import annotations

import copy
from typing import Any

from jobs.steps.config_diff import HIDDEN, diff_trees, is_secret, masked

TREE: dict[str, Any] = {
    "system": {"settings": {"idle-timeout": 10, "protocols": "TLSv1.1,TLSv1.2"}},
    "users": {
        "roles": [
            {"name": "Employees", "max-minutes": 720},
            {"name": "Guests", "max-minutes": 15},
        ],
        "dns": ["10.0.0.53", "10.0.1.53"],
    },
    "auth": {"servers": [{"name": "RADIUS", "shared-secret": "enc:abc", "port": 1812}]},
}


def test_identical_trees_are_unchanged_and_count_what_was_compared() -> None:
    diff = diff_trees(TREE, copy.deepcopy(TREE))
    assert diff.unchanged
    assert diff.compared == 11  # every leaf: 2 + 4 + 2 + 3 (names included)
    assert diff.to_json()["status"] == "unchanged"


def test_a_changed_setting_and_a_removed_object_are_one_line_each() -> None:
    after = copy.deepcopy(TREE)
    after["system"]["settings"]["protocols"] = "TLSv1.2"
    del after["users"]["roles"][1]
    diff = diff_trees(TREE, after)
    assert [(c.op, c.path) for c in diff.changes()] == [
        ("~", "/system/settings/protocols"),
        ("-", "/users/roles/Guests"),
    ]
    assert diff.changed[0].before == "TLSv1.1,TLSv1.2" and diff.changed[0].after == "TLSv1.2"
    assert diff.removed[0].before == {"name": "Guests", "max-minutes": 15}
    assert diff.to_json()["counts"] == {"added": 0, "removed": 1, "changed": 1}


def test_named_items_are_matched_by_name_not_position() -> None:
    after = copy.deepcopy(TREE)
    after["users"]["roles"].insert(0, {"name": "Contractors", "max-minutes": 240})
    diff = diff_trees(TREE, after)
    assert [(c.op, c.path) for c in diff.changes()] == [("+", "/users/roles/Contractors")]


def test_unnamed_lists_compare_by_index() -> None:
    after = copy.deepcopy(TREE)
    after["users"]["dns"] = ["10.0.1.53"]
    diff = diff_trees(TREE, after)
    assert [(c.op, c.path) for c in diff.changes()] == [
        ("~", "/users/dns/0"),
        ("-", "/users/dns/1"),
    ]


def test_json_types_are_compared_strictly() -> None:
    before = {"a": True, "b": 1, "c": None}
    after = {"a": 1, "b": 1.0, "c": None}
    diff = diff_trees(before, after)
    assert [c.path for c in diff.changed] == ["/a", "/b"]
    assert diff.compared == 1


def test_a_value_becoming_an_object_is_a_change() -> None:
    diff = diff_trees({"x": "flat"}, {"x": {"nested": 1}})
    assert [(c.op, c.path, c.after) for c in diff.changes()] == [("~", "/x", {"nested": 1})]


def test_keys_are_escaped_like_json_pointers() -> None:
    diff = diff_trees({"a/b": {"c~d": 1}}, {"a/b": {"c~d": 2}})
    assert diff.changed[0].path == "/a~1b/c~0d"


def test_left_out_subtrees_are_not_compared_but_named() -> None:
    after = copy.deepcopy(TREE)
    after["users"] = {"href": "/api/v1/configuration/users"}  # not read this time
    after["system"]["settings"]["idle-timeout"] = 20
    diff = diff_trees(TREE, after, skip=["/users"])
    assert [c.path for c in diff.changes()] == ["/system/settings/idle-timeout"]
    assert diff.not_compared == ["/users"]
    assert diff.to_json()["not_compared"] == ["/users"]


def test_secret_values_are_never_shown_but_their_change_is() -> None:
    after = copy.deepcopy(TREE)
    after["auth"]["servers"][0]["shared-secret"] = "enc:new"
    diff = diff_trees(TREE, after)
    assert [(c.path, c.before, c.after) for c in diff.changed] == [
        ("/auth/servers/RADIUS/shared-secret", HIDDEN, HIDDEN)
    ]
    removed = diff_trees(TREE, {**TREE, "auth": {"servers": []}})
    assert removed.removed[0].before == {"name": "RADIUS", "shared-secret": HIDDEN, "port": 1812}
    assert "enc:abc" not in str(removed.to_json())


def test_secret_keys_are_recognised_but_item_names_are_not_secrets() -> None:
    secret = ("admin-password", "shared_secret", "Passphrase", "private-key", "password-encrypted")
    for key in secret:
        assert is_secret(key), key
    for key in ("password-options", "name", "port", "secretary", "tokens-issued"):
        assert not is_secret(key), key
    before = {"roles": [{"name": "token-users", "max": 1}]}
    after = {"roles": [{"name": "token-users", "max": 2}]}
    assert diff_trees(before, after).changed[0].after == 2  # a role named "token…" is data
    assert masked({"x": [{"psk": "v", "keep": "w"}]}) == {"x": [{"psk": HIDDEN, "keep": "w"}]}
