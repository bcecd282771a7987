"""Every command the README and docs/ show exists as written (issue 24: docs that work).

Commands are read from the pages' fenced shell blocks and from inline code that starts with a
program (`modalops …`, `modalops-demo …`, `make …`, `python -m …`, `.venv/bin/python FILE`).
Each is resolved against what it names: a `modalops` command path and its options against the
CLI's own parser (typer/click), a make target against the Makefile, a script or module against
the tree. The commands that can run on a trained demo store run for real in
tests/test_docs_run.py; this module catches a page naming a command, sub-command or option
that does not exist (a rename the docs missed).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PROGRAMS = ("modalops", "modalops-demo", "make", "python")
PLACEHOLDERS = {"…", "...", "|"}
FENCE = re.compile(r"^```(\w*)\s*$")
INLINE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _program(token: str) -> str:
    return token.removeprefix(".venv/bin/").removeprefix("$(BIN)/")


def _starts_a_command(text: str) -> bool:
    words = text.split()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]  # VAR=value before the program
    if not words or _program(words[0]) not in PROGRAMS:
        return False
    # inline `modalops-process` or `make` alone are names, not commands
    return len(words) > 1 and (words[0] != "python" or words[1] == "-m")


def doc_commands() -> list[DocCommand]:
    found: list[DocCommand] = []
    for page in PAGES:
        name = str(page.relative_to(REPO))
        fenced: str | None = None
        pending = ""  # a fenced line ending in a backslash goes on on the next
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            fence = FENCE.match(line.strip())
            if fence:
                fenced = None if fenced is not None else fence.group(1)
                continue
            if fenced is not None:
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                line, pending = pending + line, ""
                if fenced in ("bash", "sh", "console", "shell", ""):
                    text = line.strip().removeprefix("$ ")
                    if _starts_a_command(text):
                        found.append(DocCommand(name, number, text))
                continue
            for span in INLINE.findall(line):
                if _starts_a_command(span):
                    found.append(DocCommand(name, number, span))
    return found


def _words(text: str) -> list[list[str]]:
    """The command's words, its alternatives (`worker status | stop | start`) expanded; what
    the docs write as placeholders (`…`, `[--config …]`) dropped; a trailing comment cut."""
    lexer = shlex.shlex(text.replace("[", " ").replace("]", " "), posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", tokens[0]):
        tokens = tokens[1:]
    segments: list[list[str]] = [[]]
    for token in tokens:
        if set(token) == {"|"}:
            segments.append([])
        else:
            segments[-1].append(token)
    first = segments[0]
    commands = [first]
    for alternative in segments[1:]:
        if len(alternative) == 1 and not alternative[0].startswith("-"):
            commands.append([*first[:-1], alternative[0]])  # `status | stop`: same path
        # else a real pipe into another program (`| tee`), not a docs command
    return [[t for t in c if t not in PLACEHOLDERS] for c in commands]


def _click_app(program: str):
    import typer

    if program == "modalops":
        from modalops.cli import app
    else:
        from modalops_demo.cli import app
    return typer.main.get_command(app)


def _check_cli(program: str, words: list[str]) -> str | None:
    """None if `words` name a command and options that exist, else the problem."""
    command = _click_app(program)
    path = [program]
    rest = list(words)
    # typer carries its own copy of click: a group is what lists sub-commands
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        if sub is None:
            return f"`{' '.join(path)}` has no command {rest[0]!r}"
        path.append(rest.pop(0))
        command = sub
    if hasattr(command, "commands"):
        return None  # the group itself (`modalops review …`)
    options = {
        opt: param
        for param in command.params
        if param.param_type_name == "option"
        for opt in param.opts + param.secondary_opts
    }
    positional: list[str] = []
    tokens = iter(rest)
    for token in tokens:
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        name = token.split("=", 1)[0]
        param = options.get(name)
        if param is None:
            return f"`{' '.join(path)}` has no option {name!r} (it has {sorted(options)})"
        if not param.is_flag and "=" not in token:
            next(tokens, None)  # the option's value
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if all(a.nargs >= 0 for a in arguments) and len(positional) > sum(a.nargs for a in arguments):
        return f"`{' '.join(path)}` takes {len(arguments)} argument(s), the docs give {positional}"
    return None


def _make_targets() -> set[str]:
    """Every target the Makefile defines (`browser compose: system-deps` defines two)."""
    text = (REPO / "Makefile").read_text()
    heads = re.findall(r"^([A-Za-z0-9_.$() -]+):(?!=)", text, flags=re.M)
    return {name for head in heads for name in head.split()}


def _module_exists(name: str) -> bool:
    """A module of the repository (benchmarks.*) or one installed in the venv (pytest)."""
    import importlib.util

    path = name.replace(".", "/")
    if (REPO / f"{path}.py").exists() or (REPO / path / "__main__.py").exists():
        return True
    return importlib.util.find_spec(name.split(".")[0]) is not None and "." not in name


def check(command: DocCommand) -> list[str]:
    problems = []
    for words in _words(command.text):
        program, args = _program(words[0]), words[1:]
        if program in ("modalops", "modalops-demo"):
            problem = _check_cli(program, args)
        elif program == "make":
            missing = [t for t in args if not t.startswith("-") and "=" not in t]
            missing = [t for t in missing if t not in _make_targets()]
            problem = f"Makefile has no target {missing}" if missing else None
        elif args[0] == "-m":
            problem = None if _module_exists(args[1]) else f"no module {args[1]}"
        else:
            problem = None if (REPO / args[0]).exists() else f"no file {args[0]}"
        if problem:
            problems.append(f"{command}\n    {problem}")
    return problems


def test_the_docs_name_commands_at_all():
    """The extraction finds the commands the pages are about (a broken parser finds none)."""
    commands = doc_commands()
    texts = " ".join(c.text for c in commands)
    pages = {c.page for c in commands}
    assert {"README.md", "docs/inference.md", "docs/review.md", "docs/ui.md"} <= pages
    for expected in ("modalops infer", "modalops review start", "modalops deploy", "make demo"):
        assert expected in texts, expected
    assert len(commands) >= 40, len(commands)


def test_every_command_in_the_docs_exists_as_written():
    problems = [p for c in doc_commands() for p in check(c)]
    assert not problems, "commands the docs show that do not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("modalops worker status | stop | start", None),
        ("modalops infer --no-such-option", "has no option '--no-such-option'"),
        ("modalops dataset nope /tmp", "has no command 'nope'"),
        ("make no-such-target", "Makefile has no target"),
        ("modalops-demo data --corrupt jpeg=0.05 truncated_wav=0.05", "the docs give"),
        ("modalops-demo data --out /tmp/x --corrupt jpeg=0.05 --corrupt label_swap=0.1", None),
        ("python -m benchmarks.no_such_module", "no module"),
    ],
)
def test_the_check_itself_catches_what_does_not_exist(text, expected):
    problems = check(DocCommand("x.md", 1, text))
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


# Where `make test` runs each command that README.md and the pages a newcomer follows show
# (issue 24: docs that work as written): the test module and the words of its invocation there.
# A command added to one of these pages without a test that runs it fails below.
RUN_PAGES = ("README.md", "docs/inference.md", "docs/review.md", "docs/ui.md")
RUN_BY: dict[str, tuple[str, str]] = {
    "modalops config show": ("tests/test_cli.py", '"config", "show"'),
    "modalops dataset check": ("tests/test_readme_commands.py", '"dataset", "check"'),
    "modalops dataset init": ("tests/test_cli.py", '"dataset", "init"'),
    "modalops dataset kinds": ("tests/test_cli.py", '"dataset", "kinds"'),
    "modalops deploy": ("tests/test_readme_commands.py", '"deploy"'),
    "modalops feedback": ("tests/test_production_loop.py", '["feedback"'),
    "modalops infer": ("tests/test_production_loop.py", '["infer"'),
    "modalops plan": ("tests/test_plan.py", '"plan", "--hours-per-day"'),
    "modalops privacy subject": ("tests/test_privacy.py", '"privacy", "subject"'),
    "modalops review": ("tests/test_review_server.py", "review_app"),
    "modalops review start": ("tests/test_review_server.py", '["start"'),
    "modalops review status": ("tests/test_review_server.py", '["status"'),
    "modalops review stop": ("tests/test_review_server.py", '["stop"'),
    "modalops run": ("tests/test_readme_commands.py", '"run", *config'),
    "modalops server stop": ("tests/test_readme_commands.py", '"server", "stop"'),
    "modalops status": ("tests/test_readme_commands.py", '"modalops.cli", "status"'),
    "modalops ui": ("tests/test_mlflow_ui.py", '"modalops.cli", "ui"'),
    "modalops worker start": ("tests/test_readme_commands.py", '"worker", "start"'),
    "modalops worker status": ("tests/test_readme_commands.py", '"worker", "status"'),
    "modalops worker stop": ("tests/test_readme_commands.py", '"worker", "stop"'),
    "modalops-demo data": ("tests/test_readme_commands.py", '"data", "--out"'),
    "python examples/basic_motions/prepare.py": ("tests/test_e2e_basic_motions.py", "prepare.py"),
    "python -m pytest": (".ci/run", "make test"),
    "make test": (".ci/run", "make test"),
    "make install": ("Makefile", "test: $(STAMP)"),  # make test builds .venv first
    "make system-deps": ("Makefile", "test: $(STAMP) system-deps"),
    "make review-venv": ("tests/conftest.py", '"review", "install"'),
}
# Shown but not run by `make test`, and why.
NOT_RUN = {
    "make demo": "the 40-session demo takes minutes (README quotes each measured run); its "
    "stages run in tests/test_e2e_pipeline.py and tests/test_readme_commands.py on fewer sessions",
    "make bench-real": "the real-data suite trains on public recordings for 20-40 min; run by "
    "hand, its table is in docs/real-data.md",
}


def _command_path(words: list[str]) -> str:
    program, rest = _program(words[0]), list(words[1:])
    if program in ("modalops", "modalops-demo"):
        command, path = _click_app(program), [program]
        while hasattr(command, "commands") and rest and rest[0] in command.commands:
            command = command.commands[rest[0]]
            path.append(rest.pop(0))
        return " ".join(path)
    if program == "python" and rest[:1] == ["-m"]:
        return " ".join(["python", *rest[:2]])
    return " ".join([program, *rest[:1]])


def test_every_command_the_newcomer_pages_show_is_run_by_make_test():
    shown: dict[str, list[str]] = {}
    for command in doc_commands():
        if command.page in RUN_PAGES:
            for words in _words(command.text):
                shown.setdefault(_command_path(words), []).append(str(command))
    unrun = {path: where for path, where in shown.items() if path not in {*RUN_BY, *NOT_RUN}}
    assert not unrun, f"commands the docs show that no test runs: {unrun}"
    for path in shown:
        if path in RUN_BY:
            test_file, words = RUN_BY[path]
            assert words in (REPO / test_file).read_text(), (path, test_file, words)
