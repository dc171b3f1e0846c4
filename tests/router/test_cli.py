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
