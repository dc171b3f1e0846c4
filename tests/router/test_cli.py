import argparse
import importlib

import pytest

from router import cli


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in (
        "demo",
        "collect",
        "report",
        "predictability",
        "train",
        "evaluate",
        "serve",
        "bench",
        "models",
        "local",
        "export",
        "aggregate",
    ):
        assert f"  {name} " in out


@pytest.mark.parametrize("name", sorted(cli.commands()))
def test_each_subcommand_has_a_testable_main(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(cli.commands()[name][0])
    assert callable(module.main)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_unknown_command_and_our_errors_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert cli.main(["report", "/nonexistent/outcomes", "--no-mlflow"]) != 0


def test_the_online_package_names_no_offline_module() -> None:
    """Offline commands arrive through the entry-point group, not from router's own table."""
    assert all(module.startswith("router.") for module, _ in cli.ONLINE.values())
    assert cli.commands()["train"][0] == "training.commands.train"


class _Parsed(Exception):
    """Raised instead of parsing: the parser a command built, with every flag on it."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _without_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                missing += [f"{sub.prog}: {name}" for name in _without_help(sub)]
        elif not action.help and action.dest != "help":
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def _parser_of(name: str, argv: list[str], monkeypatch: pytest.MonkeyPatch):
    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    module = importlib.import_module(cli.commands()[name][0])
    with pytest.raises(_Parsed) as parsed:
        module.main(argv)
    return parsed.value.parser


HELP_ARGV = {"bench": [[], ["replay"], ["pool"]]}


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        pytest.param(n, a, id=" ".join([n, *a]))
        for n in sorted(cli.commands())
        for a in HELP_ARGV.get(n, [[]])
    ],
)
def test_every_flag_says_what_it_is(
    name: str, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _without_help(_parser_of(name, argv, monkeypatch)) == []
