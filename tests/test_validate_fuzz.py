"""Property tests: `mlx validate` never crashes, whatever the file holds.

For any input the command must exit 0 (valid) or 1 (invalid, with file:line:col errors),
and never print a traceback or an "internal error" (exit 3). Inputs:

- arbitrary Python structures dumped as YAML, and documents shaped like mlx.yaml whose
  values are random (so the semantic rules run on odd data);
- raw text from a YAML-ish alphabet and from a soup of YAML tokens;
- the examples/ files with random edits (lines deleted, duplicated, swapped, re-indented,
  values replaced, keys inserted, text truncated).

Set MLX_FUZZ_SCALE=20 (say) for a longer hunt; the default keeps the module under ~15 s.
"""

from __future__ import annotations

import io
import os
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mlxstate.cli.main import main

pytestmark = pytest.mark.slow  # fuzzing with many examples

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))
EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
_SCALE = max(1, int(os.environ.get("MLX_FUZZ_SCALE", "1")))


def _fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples * _SCALE,
        deadline=None,
        database=None,  # never write .hypothesis/ into the repo or the test's tmp folder
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def check_validate(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Write ``text`` as an mlx.yaml, validate it, and check the command did not crash."""
    path = tmp_path / "mlx.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    capsys.readouterr()
    code = main(["validate", "-f", str(path)])
    out, err = capsys.readouterr()
    both = out + err
    assert code in (0, 1), f"exit {code} for:\n{text!r}\n{both}"
    assert "Traceback" not in both, f"traceback for:\n{text!r}\n{both}"
    assert "internal error" not in both, f"internal error for:\n{text!r}\n{both}"
    if code == 1:
        assert f"{path}:" in out, f"exit 1 without a FILE:LINE:COL error for:\n{text!r}\n{both}"


# --- values ---------------------------------------------------------------------------------

KEYS = [
    *("version", "settings", "models", "apps", "benchmarks", "dashboard"),
    *("ollama", "host", "models_dir", "huggingface", "cache_dir", "token_env", "state_dir"),
    *("prune", "dedup", "cleanup", "partials", "orphans", "detached_revisions"),
    *("dangling_links", "disk", "min_free", "source", "revision", "include", "exclude"),
    *("ensure", "protect", "path", "layout", "schedule", "prompts", "runs", "warmup"),
    *("max_tokens", "refresh", "panels", "history", "qwen", "llama", "lmstudio", "nightly"),
]
WEIRD_STRINGS = [
    *("", " ", "~", "null", "Null", "NULL", "yes", "no", "off", "on", "y", "n", "True"),
    *("1e3", "0x1F", "0o17", "0b11", ".inf", "-.inf", ".nan", "1_000", "+1", "01"),
    *("2001-12-14", "2001-12-14t21:59:43.10-05:00", "12:30:45", "1:2:3"),
    *("!!str", "*a", "&a", "%", "---", "...", "- x", "? x", ": x", "#", "'", '"', "\\"),
    *(
        "\x00",
        "\x1b[0m",
        "\u2028",
        "\u0085",
        "\ufeff",
        "\U0001f999",
        "\u210c\U0001d523",
        "a\nb",
        "\r\n",
    ),
    *("ollama://", "ollama://a:b:c", "ollama://a/b/c/d", "ollama://:x", "ollama://x:"),
    *("ollama://hf.co/o/r:Q4_K_M", "ollama://a..b", "ollama://localhost:11434/a/b:c"),
    *("hf://", "hf://a", "hf://a/b", "hf://a--b/c", "hf://../x", "hf://a/b.git", "hf://a/b."),
    *("file://", "file://~", "file:///", "file://$HOME/x", "file://~nobody/x", "file://."),
    *("@every", "@every 0s", "@every 1e9d", "@every 99999999999999999999w", "@daily"),
    *("@reboot", "* * * * *", "0 0 L * 5L", "*/0 * * * *", "60 24 32 13 8", "0 0 29 2 *"),
    *("0 0 * * MON#5", "0 0 LW * *", "0 0 15W * *", "1-5/0 * * * *", "0-99999999999 * * * *"),
    *("10GB", "-1GB", "0", "1e400", "10 GB", "1.5KiB", "1e30TB", "999999999999999999999d"),
    *("100ms", "0.05s", "1h30m", "0s", "-5s", "1.m"),
    *("~/.ollama/models", "~/.ollama/models/x", "~/.cache/huggingface/hub/x", "/", ".", ".."),
    *("$HOME", "${HOME}/x", "$UNDEFINED_VAR/x", "http://[::1]:11434", "http://[::1", "::"),
    *("HF_TOKEN", "hf_" + "x" * 34, "a" * 300, "standard", "lmstudio", "dir", "absent"),
]

names = st.one_of(
    st.sampled_from(["qwen", "llama", "old", "a", "b", "x.y", "-a", "Q", "7"]),
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,8}", fullmatch=True),
    st.text(max_size=8),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=1000),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # includes nan, inf and -0.0
    st.text(max_size=20),
    st.sampled_from(WEIRD_STRINGS),
    st.sampled_from(KEYS),
)
keys = st.one_of(
    st.sampled_from(KEYS),
    st.text(max_size=10),
    st.integers(min_value=-3, max_value=3),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


def _or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values (3 in 4), sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, st.one_of(scalars, trees))


def _entry(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    extra = st.dictionaries(keys, scalars, max_size=1)
    shaped = st.builds(
        lambda fixed, more: {**more, **fixed}, st.fixed_dictionaries({}, optional=fields), extra
    )
    return _or_junk(shaped)


sources = _or_junk(
    st.builds(
        str.__add__,
        st.sampled_from(["hf://", "ollama://", "file://", "", "https://", "HF://"]),
        st.one_of(
            st.sampled_from(["org/repo", "qwen2.5:7b", "~/m", "a/b/c", "a:b", "hf.co/o/r:Q"]),
            st.text(max_size=30),
        ),
    )
    | st.sampled_from([s for s in WEIRD_STRINGS if "://" in s])
)
durations = _or_junk(
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3})?(ms|s|m|h|d|w)", fullmatch=True)
    | st.sampled_from(["1s", "7d", "10ms", "0s", "1 week"])
)
cron_fields = st.sampled_from(
    ["*", "0", "3", "59", "60", "*/5", "*/0", "1-5", "5-1", "L", "5L", "MON", "MON#2", "?", "1,2"]
)
schedules = _or_junk(
    st.lists(cron_fields, min_size=3, max_size=7).map(" ".join)
    | st.sampled_from(["@hourly", "@daily", "@weekly", "@monthly", "@every 6h", "@every"])
    | st.builds("@every {}".format, durations)
)
sizes = _or_junk(
    st.integers()
    | st.from_regex(
        r"-?[0-9]{1,5}(\.[0-9])? ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|XB|gb)?", fullmatch=True
    )
)
paths = _or_junk(
    st.sampled_from(
        ["~/.ollama/models/x", "~/.cache/huggingface/hub/x", "~/x", "~/x/", "/", ".", "", "~"]
    )
    | st.text(max_size=20)
)
bools = _or_junk(st.booleans())
patterns = _or_junk(st.lists(st.text(max_size=6) | st.sampled_from(["*.json", ""]), max_size=3))
name_lists = _or_junk(st.lists(names, max_size=4))

models = st.dictionaries(
    names,
    _entry(
        {
            "source": sources,
            "revision": _or_junk(st.sampled_from(["main", "v1.0", "../x", "a" * 40, "1.0"])),
            "include": patterns,
            "exclude": patterns,
            "ensure": _or_junk(st.sampled_from(["present", "absent"])),
            "protect": bools,
        }
    ),
    max_size=4,
)
apps = st.dictionaries(
    names,
    _entry(
        {
            "path": paths,
            "layout": _or_junk(st.sampled_from(["dir", "lmstudio"])),
            "models": name_lists,
        }
    ),
    max_size=3,
)
benchmarks = st.dictionaries(
    names,
    _entry(
        {
            "models": name_lists,
            "schedule": schedules,
            "prompts": _or_junk(st.just("standard") | st.lists(st.text(max_size=10), max_size=3)),
            "runs": _or_junk(st.integers(min_value=-2, max_value=2000)),
            "warmup": _or_junk(st.integers(min_value=-2, max_value=200)),
            "max_tokens": _or_junk(st.integers(min_value=-2, max_value=2_000_000)),
        }
    ),
    max_size=3,
)
settings_section = _entry(
    {
        "ollama": _entry(
            {
                "host": _or_junk(
                    st.sampled_from(["http://127.0.0.1:11434", "localhost", "ftp://x", ":1"])
                    | st.text(max_size=20)
                ),
                "models_dir": paths,
            }
        ),
        "huggingface": _entry({"cache_dir": paths, "token_env": _or_junk(st.text(max_size=12))}),
        "state_dir": paths,
        "prune": bools,
        "dedup": _or_junk(st.sampled_from(["off", "auto", "hardlink", "clone", "symlink", False])),
        "cleanup": _entry(
            {k: bools for k in ("partials", "orphans", "detached_revisions", "dangling_links")}
        ),
        "disk": _entry({"min_free": sizes}),
    }
)
dashboard = _entry(
    {
        "refresh": durations,
        "history": durations,
        "panels": _or_junk(
            st.lists(st.sampled_from(["models", "system", "disk", "benchmarks", "gpu"]))
        ),
    }
)
spec_shaped = st.fixed_dictionaries(
    {"version": st.one_of(st.just(1), st.just(1), scalars)},
    optional={
        "settings": settings_section,
        "models": models,
        "apps": apps,
        "benchmarks": benchmarks,
        "dashboard": dashboard,
    },
)


def dump_yaml(document: Any, flow: bool | None) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


# --- (a) generated documents and raw text ------------------------------------------------


@_fuzz(150)
@given(document=st.one_of(trees, spec_shaped), flow=st.sampled_from([False, True, None]))
def test_validate_never_crashes_on_generated_yaml(
    document: Any, flow: bool | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_validate(dump_yaml(document, flow), tmp_path, capsys)


@_fuzz(200)
@given(document=spec_shaped, flow=st.sampled_from([False, None]))
def test_validate_never_crashes_on_spec_shaped_yaml(
    document: Any, flow: bool | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_validate(dump_yaml(document, flow), tmp_path, capsys)


YAMLISH = ":-[]{}#&*!|>'\"%@`, \t\n?~.,/\\" + string.ascii_letters + "0123456789"
TOKENS = [
    *("version: 1\n", "version:", "models:", "settings:", "apps:", "benchmarks:"),
    *("dashboard:", "source: ", "path: ", "models: [", "ensure: absent", "protect: true"),
    *("schedule: ", "runs: ", "min_free: ", "ollama://", "hf://", "file://", "qwen", "a/b"),
    *("\n", "\n  ", "\n    ", "\n      ", "\t", "- ", ": ", ":", "? ", ", ", "#", " # c\n"),
    *("&a ", "*a", "&b ", "*b", "<<: ", "!!str ", "!!int ", "!!binary ", "!!set ", "!!omap "),
    *("!!map ", "!!seq ", "!foo ", "!<tag:x> ", "---\n", "...\n", "%YAML 1.1\n", "%YAML 1.2\n"),
    *("%TAG ! tag:x:\n", "{", "}", "[", "]", '"', "'", "|\n", "|-\n", ">+\n", "\\"),
    *('"\\u00e9"', '"\\x00"', '"\\t"', '"\\n"', '"\\N"', "\u00e9", "\U0001f999", "\ufeff"),
    *("1", "-1", "0x10", ".nan", "null", "~", "yes", "2001-12-14"),
]
raw_text = st.one_of(
    st.text(alphabet=YAMLISH, max_size=160),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(YAMLISH, max_size=4)), max_size=40).map(
        "".join
    ),
)


# Crashes found by these tests, kept as regression examples:
# a lone surrogate (from a "\uD800" escape) in a value that ends up in a text message makes
# writing the error line raise UnicodeEncodeError -> exit 3 "internal error".
SURROGATE_IN_MESSAGE = (
    'version: 1\nmodels:\n  q:\n    source: "file:///\\uD800"\n'
    '  r:\n    source: "file:///\\uD800"\n'
)
# a top-level key containing '[' is dropped from the pydantic location -> IndexError, exit 3.
BRACKET_KEY = "version: 1\nmodels[qwen]:\n  source: ollama://qwen2.5:7b\n"


@_fuzz(300)
@given(text=raw_text)
@example(text=SURROGATE_IN_MESSAGE)  # was: UnicodeEncodeError printing the message, exit 3
@example(text=BRACKET_KEY)  # was: IndexError in _unknown_key, exit 3
@example(text="version: 1\nmodels: &a\n  x: *a\n")
@example(text="version: 1\nmodels: " + "[" * 600 + "]" * 600 + "\n")
@example(text="version: 1\n{a: 1}: x\n? [a, b]\n: y\n")
@example(text='version: 1\nmodels:\n  q:\n    source: "file:///a\\0b"\n')
@example(text="version: 1\x01\n")
@example(text="!!int")  # ruamel IndexError on an empty !!int (was exit 3)
@example(text="version: !!float\nmodels: !!bool\n")
def test_validate_never_crashes_on_raw_text(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_validate(text, tmp_path, capsys)


# --- (b) mutated examples --------------------------------------------------------------------

MUTATIONS = ("delete", "duplicate", "swap", "indent", "replace", "insert", "truncate")


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(EXAMPLE_TEXTS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        text = _mutate(draw, text, draw(st.sampled_from(MUTATIONS)))
    return text


def _mutate(draw: st.DrawFn, text: str, kind: str) -> str:
    lines = text.split("\n")
    # Mostly edit YAML content; comments are most of the examples' lines.
    content = [n for n, line in enumerate(lines) if line.strip() and line.strip()[0] != "#"]
    anywhere = st.integers(min_value=0, max_value=len(lines) - 1)
    pick = st.sampled_from(content) | anywhere if content else anywhere
    i = draw(pick)
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = draw(pick)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        prefix = draw(st.sampled_from(["", " ", "  ", "   ", "    ", "      ", "\t", "  \t"]))
        lines[i] = prefix + lines[i].lstrip(" ")
    elif kind == "replace":
        lines[i] = _replace_scalar(draw, lines[i])
    elif kind == "insert":
        indent = draw(st.sampled_from(["", "  ", "    ", "      "]))
        key = draw(st.sampled_from(KEYS) | st.text(YAMLISH, min_size=1, max_size=8))
        lines.insert(i, f"{indent}{key}: {_scalar_text(draw)}")
    else:  # truncate
        return text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return "\n".join(lines)


def _replace_scalar(draw: st.DrawFn, line: str) -> str:
    for marker in (": ", "- "):
        head, sep, _ = line.partition(marker)
        if sep:
            return head + sep + _scalar_text(draw)
    return _scalar_text(draw)


def _scalar_text(draw: st.DrawFn) -> str:
    value = draw(
        scalars | st.lists(scalars, max_size=3) | st.dictionaries(keys, scalars, max_size=2)
    )
    if isinstance(value, str) and draw(st.booleans()):
        return value.replace("\n", " ")  # sometimes unquoted, as a user would type it
    return dump_yaml(value, True).strip().removesuffix("...").strip().replace("\n", " ")


@_fuzz(250)
@given(text=mutated_examples())
def test_validate_never_crashes_on_mutated_examples(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_validate(text, tmp_path, capsys)


def test_examples_are_there() -> None:
    assert len(EXAMPLE_TEXTS) >= 2
