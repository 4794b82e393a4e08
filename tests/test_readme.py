"""The README is a contract: its commands, options and config keys exist, and the other way round."""
from __future__ import annotations

import dataclasses
import re
import tomllib

from bot.cli import cli
from bot.settings import Settings, load_settings, replace
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIG = REPO / "config.toml"


def test_readme_names_every_cli_command_and_no_other():
    named = set(re.findall(r"`(\w[\w-]*)`", README.split("Commands:")[1].split("Global options")[0]))
    assert named == set(cli.commands)


def test_readme_global_options_exist():
    options = {opt for p in cli.params for opt in p.opts}
    for option in re.findall(r"`(--[\w-]+)", README.split("Global options:")[1].split("\n\n")[0]):
        assert option in options


def test_config_toml_documents_every_setting_with_its_default():
    raw = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    for section in dataclasses.fields(Settings):
        keys = {f.name for f in dataclasses.fields(section.default_factory())}
        assert set(raw[section.name]) == keys, section.name
    assert load_settings(CONFIG) == replace(Settings(), data={"dir": str(REPO / "data")})


def test_every_config_key_has_a_comment():
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\w+ = ", line):
            above = lines[i - 1]
            assert above.startswith("#") or re.match(r"^\w+ = ", above), f"undocumented key: {line}"


def test_readme_setup_commands_are_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = re.findall(r"^    (python3 -m venv .*pytest.*)$", README, re.M)
    assert len(test_command) == 1
    assert test_command[0].replace(" -q", "") in ci.replace(" -q", "")
    main_command = re.findall(r"^    (python3 -m venv .*bulletin-bot \w+)$", README, re.M)
    assert len(main_command) == 1
