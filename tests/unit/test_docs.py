"""The README, docs/ and CONTRIBUTING.md keep working as written.

Every `coreml-routes ...` command they quote (in a fenced block, or as an inline code span)
must parse with the CLI's own parser; the cheap ones that run on Linux are run; the others
are listed in SKIPPED with the reason they are not run here. A ```text block is a synopsis
(placeholders such as {v3,v4} and [model flags]) and is not a command."""
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from coreml_routes import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "CONTRIBUTING.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(coreml-routes [^`\n]+)`")

# subcommand -> why a quoted command is parsed but not run by this test
SKIPPED = {
    "convert": "converts in a route's pinned tox env (GBs, minutes); the route envs' own "
               "tests (tests/routes, tox -e v3 ...) run conversions",
    "compare": "converts by several routes in their tox envs (minutes); the README's first "
               "compare was run by hand when written",
    "diagnose": "converts (and bisects) in a route's tox env",
    "ops": "converts in a route's tox env to list its op names",
    "bench": "measures converted builds for minutes; Core ML cells need a Mac",
    "export-xctest": "writes into a converted build folder (build/<model>/<route>/xctest); the "
                     "Swift package itself needs a Mac with Xcode",
}
RUN_IF_BUILT = {"predict"}   # run when the build folder it names exists, else skipped


def commands(text):
    """-> [command line] quoted in ``text``: fenced blocks (not ```text) and inline spans."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang == "text":
            continue
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("coreml-routes "):
                found.append(line)
    outside = FENCE.sub("", text)
    found += [m.strip() for m in INLINE.findall(outside)]
    return found


def quoted():
    out = []
    for doc in DOCS:
        for line in commands((ROOT / doc).read_text()):
            out.append(pytest.param(doc, line, id="{}: {}".format(doc, line)))
    return out


QUOTED = quoted()


def argv_of(line):
    return shlex.split(line)[1:]


def subcommand(argv):
    return next((a for a in argv if not a.startswith("-")), None)


def parses(argv):
    try:
        cli.build_parser().parse_args(argv)
    except SystemExit as e:   # --help / --version exit 0 after printing; a bad command exits 2
        return e.code in (0, None)
    return True


def test_the_docs_quote_commands():
    assert len(QUOTED) >= 10


@pytest.mark.parametrize("doc, line", QUOTED)
def test_every_quoted_command_parses(doc, line, capsys):
    assert parses(argv_of(line)), "{} quotes a command the CLI does not take: {}\n{}".format(
        doc, line, capsys.readouterr().err)


@pytest.mark.parametrize("doc, line", QUOTED)
def test_cheap_quoted_commands_run(doc, line, tmp_path, monkeypatch, capsys):
    argv = argv_of(line)
    command = subcommand(argv)
    if command in SKIPPED and "--help" not in argv:
        pytest.skip("{}: {}".format(command, SKIPPED[command]))
    if command in RUN_IF_BUILT and "--help" not in argv:
        missing = [a for a in argv if a.startswith("build/") and not (ROOT / a).exists()]
        if missing:
            pytest.skip("needs a converted build ({}): tox -e v3,v4 writes it".format(missing[0]))
    if command == "report":
        # the committed results, rendered into a copy: the repository is left as it is
        shutil.copytree(str(ROOT / "results"), str(tmp_path / "results"))
        shutil.copy(str(ROOT / "README.md"), str(tmp_path / "README.md"))
        monkeypatch.chdir(tmp_path)
    else:
        monkeypatch.chdir(ROOT)
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    assert code == 0, "{}: {} exited {}\n{}".format(doc, line, code, out.err[-2000:])
    if command == "report":
        for png in ("accuracy.png", "latency.png", "evaluator-speed.png"):
            assert (tmp_path / "results" / png).exists()


@pytest.mark.parametrize("command", sorted(
    cli.build_parser()._subparsers._group_actions[0].choices))
def test_every_command_has_help(command, capsys):
    """docs/cli.md says each command's --help prints its own help."""
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args([command, "--help"])
    assert e.value.code == 0 and "usage: coreml-routes " + command in capsys.readouterr().out


def test_the_readme_is_a_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    text = "\n".join(lines)
    for route in ("v3", "v4", "v9", "v9-export", "et", "coreai"):
        assert "| `{}` |".format(route) in text
    assert "<!-- sample-table -->" in text and "<!-- /sample-table -->" in text


def test_the_readme_test_command_is_the_last_line_of_ci():
    """The README's test command is one fenced line, exactly what CI runs last."""
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1].strip()
    blocks = [body.strip() for lang, body in FENCE.findall((ROOT / "README.md").read_text())]
    assert ci in blocks, "README has no fenced block holding exactly: " + ci


@pytest.mark.parametrize("doc", DOCS)
def test_links_and_module_paths_exist(doc):
    text = (ROOT / doc).read_text()
    base = (ROOT / doc).parent
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (base / target).exists(), "{} links to missing {}".format(doc, target)
    for path in re.findall(r"`([\w./-]+/[\w.-]+\.py)`", text):
        assert (ROOT / path).exists(), "{} names missing file {}".format(doc, path)


def test_skip_list_names_real_commands():
    choices = cli.build_parser()._subparsers._group_actions[0].choices
    assert set(SKIPPED) | RUN_IF_BUILT <= set(choices)
    assert os.path.isfile(str(ROOT / ".ci" / "run"))
