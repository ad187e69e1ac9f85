"""``mlx bench report --html``: one self-contained page, every string escaped, and the DOM a
real browser (headless Chromium) renders from it: one chart per model and metric, a point
per ok run, a marker where the engine version changed. The screenshot is kept under
tests/artifacts/ (gitignored; ``$MLX_TEST_ARTIFACTS`` elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlxstate.bench.record import RunRecord
from mlxstate.bench.report import render_report
from tests.helpers import run_ok
from tests.helpers.bench import T0, make_run, save_runs

DAY = 86400.0
HOSTILE = "<script>alert(1)</script>"
ARTIFACTS = Path(os.environ.get("MLX_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    children: list[Element] = field(default_factory=list)
    text: str = ""

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        found = []
        for child in self.children:
            if child.tag == tag and (cls is None or cls in child.classes()):
                found.append(child)
            found += child.find(tag, cls)
        return found

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class _Tree(HTMLParser):
    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.at = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Element(tag, {k: v or "" for k, v in attrs}, self.at)
        self.at.children.append(node)
        if tag not in self.VOID:
            self.at = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.at.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.at))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.at = node.parent

    def handle_data(self, data: str) -> None:
        self.at.text += data


def parse(page: str) -> Element:
    tree = _Tree()
    tree.feed(page)
    return tree.root


def history() -> list[RunRecord]:
    """llama: 6 ok runs with an Ollama upgrade after the third, one skipped, one failed;
    a model named like a script: one ok run."""
    runs = [
        make_run(
            f"l{i}",
            started=T0 + i * DAY,
            gen_tps=(50 + i, 51 + i, 49 + i),
            ttft_ms=(120 - i, 118 - i, 125 - i),
            engine_version="0.5.1" if i < 3 else "0.6.0",
        )
        for i in range(6)
    ]
    runs.append(make_run("s1", started=T0 + 7 * DAY, status="skipped", reason="on battery"))
    runs.append(make_run("f1", started=T0 + 8 * DAY, status="failed", reason=f"boom {HOSTILE}"))
    runs.append(make_run("x1", model=HOSTILE, benchmark=HOSTILE, started=T0 + DAY))
    return runs


def check_charts(root: Element) -> None:
    """What the page must show for :func:`history`, in a DOM (the browser's or ours)."""
    assert not root.find("script")  # the hostile names stayed text
    assert not root.find("img") and not root.find("link") and not root.find("iframe")
    charts = root.find("svg", "chart")
    assert len(charts) == 4  # 2 series x (gen tok/s, TTFT)
    by_key = {(c.attrs["data-model"], c.attrs["data-metric"]): c for c in charts}
    assert set(by_key) == {
        ("llama", "gen_tps"),
        ("llama", "ttft_ms"),
        (HOSTILE, "gen_tps"),
        (HOSTILE, "ttft_ms"),
    }
    for metric in ("gen_tps", "ttft_ms"):
        llama = by_key[("llama", metric)]
        assert len(llama.find("circle", "point")) == 6  # one per ok run
        assert [p.attrs["data-run"] for p in llama.find("circle", "point")] == [
            f"l{i}" for i in range(6)
        ]
        assert len(llama.find("polyline", "median")) == 1
        [change] = llama.find("g", "change")
        assert change.find("line") and "ollama 0.6.0" in change.all_text()
        assert len(by_key[(HOSTILE, metric)].find("circle", "point")) == 1
        assert not by_key[(HOSTILE, metric)].find("g", "change")
    headings = [h.all_text() for h in root.find("h2")]
    assert f"{HOSTILE} · {HOSTILE}" in headings
    [not_ok] = root.find("table", "not-ok")
    assert [r.find("td")[1].all_text() for r in not_ok.find("tbody")[0].find("tr")] == [
        "skipped",
        "failed",
    ]
    assert f"boom {HOSTILE}" in not_ok.all_text()
    [summary] = [t for t in root.find("table") if t.attrs.get("id") == "summary"]
    assert [r.find("td")[0].all_text() for r in summary.find("tr")[1:]] == [HOSTILE, "llama"]


def test_page_is_self_contained_and_escaped() -> None:
    page = render_report(history(), generated=T0 + 10 * DAY)
    assert HOSTILE not in page  # never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "src=" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the browser refuses any fetch or script anyway
    check_charts(parse(page))


def test_points_are_placed_by_time_and_value() -> None:
    runs = [make_run(f"r{i}", started=T0 + i * DAY, gen_tps=(10.0 * i + 10,) * 3) for i in range(3)]
    chart = parse(render_report(runs, generated=T0)).find("svg", "chart")[0]
    points = [(float(p.attrs["cx"]), float(p.attrs["cy"])) for p in chart.find("circle", "point")]
    xs, ys = zip(*points, strict=True)
    assert xs[0] < xs[1] < xs[2] and xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])
    assert ys[0] > ys[1] > ys[2]  # faster is higher up (SVG y grows downwards)


def test_no_runs_is_a_clear_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run_ok(capsys, "bench", "report", "--html", str(out))
    assert result.out == f"wrote {out} (0 runs)\n"
    root = parse(out.read_text())
    [empty] = [p for p in root.find("p") if p.attrs.get("id") == "no-runs"]
    assert "No benchmark runs yet" in empty.all_text()
    assert not root.find("svg")


def test_command_filters_and_writes_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    save_runs(*history())
    out = tmp_path / "sub" / "report.html"
    result = run_ok(capsys, "bench", "report", "--html", str(out), "--model", "llama")
    assert result.out == f"wrote {out} (8 runs)\n"
    charts = parse(out.read_text()).find("svg", "chart")
    assert {c.attrs["data-model"] for c in charts} == {"llama"}
    (tmp_path / "a-file").write_text("")
    bad = run_ok(capsys, "bench", "report", "--html", str(tmp_path / "a-file" / "r.html"), code=1)
    assert bad.err.startswith(f"error: cannot write {tmp_path}/a-file/r.html: ")
    assert bad.err.count("\n") == 1


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@pytest.mark.slow  # two browser starts: about 2.5 s
def test_chromium_renders_the_charts(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(render_report(history(), generated=T0 + 10 * DAY))
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<svg" in dom.stdout  # the browser's DOM, not an error page
    check_charts(parse(dom.stdout))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "bench-report.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


def test_non_finite_samples_do_not_break_the_charts() -> None:
    inf, nan = float("inf"), float("nan")
    runs = [
        make_run("r1", gen_tps=(50.0, inf, nan)),
        make_run("r2", started=T0 + 60, gen_tps=(inf, inf), ttft_ms=(nan, nan)),
    ]
    page = render_report(runs, generated=T0 + 120)
    assert 'id="no-runs"' not in page
    assert "nan" not in page.lower().replace("nan-", "") and "inf" not in page.lower()


def test_dash_writes_the_page_to_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_runs(make_run("r1"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    result = run_ok(capsys, "bench", "report", "--html", "-")
    assert result.out.startswith("<!DOCTYPE html>") and result.out.rstrip().endswith("</html>")
    assert list((tmp_path / "cwd").iterdir()) == []  # no file named "-"
