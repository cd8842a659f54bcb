"""Cluster safety without a cluster: a user is one slot; no script names a key from ARGV.

fakeredis runs any script whatever its keys, and conftest only sees the keys a call declares.
These guards cover the rest: the keys a script names from a declared key's bucket prefix, and
the rule that makes that safe (a key name never comes from an argument a caller controls).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st
from lupa import lua51
from redis.crc import key_slot

from sessionstore._core import binding, scripts
from sessionstore._core.keys import random_part
from sessionstore._core.operations import Core, ScriptCall
from sessionstore._core.scripts import Script
from sessionstore.config import StoreConfig

tenants = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
user_ids = st.integers(min_value=0, max_value=2**63 - 1)
prefixes = st.from_regex(r"[A-Za-z0-9_.-]{1,32}", fullmatch=True)
buckets = st.integers(min_value=1, max_value=1024)


def every_script_call(core: Core, tenant: str, user_id: int) -> tuple[str, list[ScriptCall]]:
    """A new session's id and the script call of every operation on it, as the core builds them."""
    core.layout_checked = True  # the once-per-store check is plain commands, one key each
    core.settings_due = float("inf")  # and so is the settings read
    create = core.create(
        tenant,
        user_id,
        ip_address="203.0.113.7",
        user_agent="curl/8.4",
        auth_method="password",
        mfa_verified=False,
    )
    batch = next(create)
    try:
        create.send([[1], *[None] * (len(batch) - 1)])
    except StopIteration as done:
        session, token = done.value
    planned = core.validate_call(tenant, token)
    assert planned is not None
    calls = [batch[0], planned[0]]
    for flow in (
        core.get(tenant, session.id),
        core.revoke(tenant, user_id, session.id),
        core.revoke_all(tenant, user_id),
        core.revoke_sessions(tenant, user_id=user_id, ip_address="203.0.113.7"),
        core.list_user_sessions(tenant, user_id),
        core.update(tenant, session.id, mfa_verified=True),
        core.list_sessions(tenant),
        core.list_sessions(tenant, ip_address="203.0.113.7"),
    ):
        calls += [call for call in next(flow) if isinstance(call, ScriptCall)]
    # Device binding (DBSC): every script call is on one session, built in one place.
    calls += [binding.session_call(core, script, tenant, session.id) for script in binding.SCRIPTS]
    return session.id, calls


def derived_key_prefixes(script: Script) -> list[str]:
    """Expressions by which a script names its bucket from a declared key."""
    source = script.source.decode()
    return re.findall(r"^local \w+ = (bucket_of\(KEYS\[\d+\]\))$", source, re.MULTILINE)


_lua = lua51.LuaRuntime()  # Redis runs Lua 5.1


def evaluate(script: Script, expression: str, keys: tuple[str, ...]) -> str:
    """Run a script's own key-building expression on the keys a call declares."""
    prelude = script.source.decode().split("\n-- " + script.name + ".lua:")[0]
    prelude = prelude.removesuffix("\nlocal function answer()")  # a remembered script's own
    function = _lua.execute(f"{prelude}\nreturn function(KEYS) return {expression} end")
    return str(function(_lua.table(*keys)))


@settings(max_examples=200, deadline=None)
@given(tenant=tenants, user_id=user_ids, prefix=prefixes, bucket_count=buckets)
def test_a_user_lives_in_one_slot(
    tenant: str, user_id: int, prefix: str, bucket_count: int
) -> None:
    core = Core(StoreConfig(prefix=prefix, tenant_buckets=bucket_count))
    session_id, calls = every_script_call(core, tenant, user_id)
    assert {call.script for call in calls} == set(scripts.ALL)

    session_key = core.keys.session(tenant, session_id)
    slot = key_slot(session_key.encode())
    for call in calls:
        declared = {key_slot(key.encode()) for key in call.keys}
        assert len(declared) == 1, call
        if call.script is scripts.PAGE and call.keys[0] != core.keys.created_index_of(
            tenant, session_id
        ):
            continue  # a listing asks every bucket of the tenant, each in its own slot
        assert declared == {slot}, call
        for expression in derived_key_prefixes(call.script):
            # Scripts name the bucket's other keys from this prefix: it must be the prefix of
            # the hash the store wrote, so no script ever reaches into another slot.
            built = evaluate(call.script, expression, call.keys) + "s:" + random_part(session_id)
            assert built == session_key, call.script


def test_every_script_that_names_keys_from_its_bucket_is_checked() -> None:
    # If a refactor renamed the prefix variable, the test above would check nothing.
    checked = {script.name for script in scripts.ALL if derived_key_prefixes(script)}
    assert checked == {script.name for script in scripts.ALL}


# -- lint: a key name is never built from ARGV ------------------------------------------------

_KEYLESS = {"TIME", "PING", "ECHO"}
_STRING = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def _names(expression: str) -> set[str]:
    return set(re.findall(r"\b[A-Za-z_]\w*\b", _STRING.sub("", expression)))


# index.lua's functions take the index key first and name its chunks from it and from what
# its directory holds (its own lint below); a script's own code is linted as if each call
# were a redis.call on that key, and its reads return data of that key.
_INDEX = scripts._read("index").decode()
_INDEX_CALLS = r"index_add|index_remove|index_range|index_range_rev|index_count"


def _value_names(expression: str) -> set[str]:
    """The names a value comes from. What a redis.call returns is data of the key it reads,
    so it comes from that key's names, not from its other arguments (range bounds, limits)."""
    names: set[str] = set()
    while call := re.search(rf"(?<!function )\b(redis\.p?call|{_INDEX_CALLS})\(", expression):
        depth, end = 0, call.end() - 1
        for end in range(call.end() - 1, len(expression)):
            depth += {"(": 1, ")": -1}.get(expression[end], 0)
            if depth == 0:
                break
        arguments = _arguments(expression, call.end() - 1)
        key = 0 if re.fullmatch(_INDEX_CALLS, call[1]) else 1
        names |= _names(arguments[key]) if len(arguments) > key else set()
        expression = expression[: call.start()] + " " + expression[end + 1 :]
    return names | _names(expression)


def _arguments(source: str, start: int) -> list[str]:
    """The top-level comma-separated arguments of the call whose '(' is at ``start``."""
    depth, quote, current, arguments = 0, "", "", []
    for char in source[start:]:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            if depth == 1:
                continue
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return [*arguments, current.strip()]
        elif char == "," and depth == 1:
            arguments.append(current.strip())
            current = ""
            continue
        current += char
    raise ValueError("unbalanced parentheses")


def _assignments(source: str) -> Iterator[tuple[list[str], str]]:
    """(assigned names, expression) of plain, table-element and loop assignments, and of the
    parameters of local functions, which take every argument passed to them."""
    for function in re.finditer(r"local function (\w+)\(([^)]*)\)", source):
        parameters = re.findall(r"\w+", function[2])
        for call in re.finditer(rf"(?<!function )\b{function[1]}\(", source):
            for parameter, argument in zip(
                parameters, _arguments(source, call.end() - 1), strict=False
            ):  # unpack(...)
                yield [parameter], argument
    for line in source.splitlines():
        loop = re.match(r"\s*for (.+?)(?: in | = )(.+) do\s*$", line)
        if loop:
            yield re.findall(r"\w+", loop[1]), loop[2]
            continue
        plain = re.match(r"\s*(?:local )?([\w\s,\[\]'#+.-]+?)\s*=(?!=)(.+)$", line)
        if plain and not re.match(r"\s*(if|while|until|return)\b", line):
            targets = [re.match(r"\s*(\w+)", target) for target in plain[1].split(",")]
            yield [target[1] for target in targets if target], plain[2]


def _origins(source: str) -> tuple[set[str], set[str]]:
    """Names whose value depends on ARGV, and names whose value depends on KEYS."""
    assignments = list(_assignments(source))
    from_argv, from_keys = {"ARGV"}, {"KEYS"}
    changed = True
    while changed:
        changed = False
        for names, expression in assignments:
            used = _value_names(expression)
            for origin in (from_argv, from_keys):
                if used & origin and not set(names) <= origin:
                    origin.update(names)
                    changed = True
    return from_argv, from_keys


def _without_unused_functions(source: str) -> str:
    """The shared prelude defines functions a script may not call: they run nowhere there."""
    for function in re.finditer(r"^local function (\w+)\(.*?^end$", source, re.M | re.S):
        if not re.search(rf"(?<!function )\b{function[1]}\(", source):
            source = source.replace(function[0], "")
    return source


def key_name_problems(lua: str) -> list[str]:
    """The key argument of every redis.call that is not derived from KEYS alone."""
    source = _without_unused_functions(re.sub(r"--[^\n]*", "", lua.removeprefix(_INDEX)))
    from_argv, from_keys = _origins(source)
    problems = []
    for call in re.finditer(rf"(?<!function )\b(redis\.p?call|{_INDEX_CALLS})\(", source):
        arguments = _arguments(source, call.end() - 1)
        if call[1] in ("redis.call", "redis.pcall"):
            command, *rest = arguments
            if not rest or command.strip("'\"").upper() in _KEYLESS:
                continue
        else:
            rest = arguments
        used = _names(rest[0])
        if used & from_argv or not used & from_keys:
            problems.append(rest[0])
    return problems


def test_index_lua_names_keys_only_from_its_index() -> None:
    # Every key it touches is the index itself, a chunk named from the index, or the index's
    # directory, count or scratch key: chunk_key(index, boundary), `index .. ':d'` and so on.
    code = re.sub(r"--[^\n]*", "", _INDEX)
    keys = {_arguments(code, call.end() - 1)[1] for call in re.finditer(r"redis\.p?call\(", code)}
    allowed = {"index", "index .. ':d'", "index .. ':n'", "chunk", "target", "key"}
    allowed |= {"chunk_key(index, boundary)", "scratch"}
    assert keys == allowed
    assert set(re.findall(r"local (?:chunk|new_chunk|target) = (.+)", _INDEX)) == {
        "chunk_key(index, boundary)",
        "chunk_key(index, new_boundary)",
        "chunk_key(index, before)",
    }
    assert re.findall(r"local scratch = (.+)", _INDEX) == ["index .. ':sort'"]


def test_no_script_builds_a_key_name_from_argv() -> None:
    for script in scripts.ALL:
        assert key_name_problems(script.source.decode()) == [], script.name


def test_the_lint_catches_keys_named_from_arguments() -> None:
    direct = "redis.call('DEL', 'x:' .. ARGV[1])"
    through_locals = """
        local session_id = ARGV[2]
        local base = string.sub(KEYS[1], 1, -2)
        local key = base .. session_id
        redis.call('HGETALL', key)
    """
    through_a_loop = """
        for _, member in ipairs({ARGV[1], ARGV[2]}) do
          redis.call('DEL', string.sub(KEYS[1], 1, -2) .. member)
        end
    """
    through_a_function = """
        local function drop(bucket, id) redis.call('DEL', bucket .. id) end
        drop(string.sub(KEYS[1], 1, 3), ARGV[1])
    """
    constant = "redis.call('GET', 'global-counter')"
    assert key_name_problems(direct) == ["'x:' .. ARGV[1]"]
    assert key_name_problems(through_locals) == ["key"]
    assert key_name_problems(through_a_loop) == ["string.sub(KEYS[1], 1, -2) .. member"]
    assert key_name_problems(through_a_function) == ["bucket .. id"]
    assert key_name_problems(constant) == ["'global-counter'"]
    assert key_name_problems("redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])") == []
