"""The configuration: YAML files in, frozen dataclasses out (docs/config reference in
README). One module per job: `types` (the dataclasses), `load` (read, merge, validate),
`show` (`config show`), `checks` (names), `policy` and `policyload` (communities, budgets,
campaigns), `schema` (YAML to dataclass by field types), `yamlsource` (the file and line of
every key), `pipes` (Vacuum Pipes expansion). The names below are its public face.
"""

from __future__ import annotations

from vcyclectl.config.checks import MACHINETYPE_NAME, SPACE_NAME
from vcyclectl.config.load import build, config_files, load
from vcyclectl.config.policy import WHEN_PATTERN, Budget, Campaign, Community, parse_when
from vcyclectl.config.show import display
from vcyclectl.config.types import (CLOUDS, CONFIG_ENV, DEFAULT_CONFIG, Config, Machinetype,
                                    Space, SpaceSettings, machinetype_options)

__all__ = ["CLOUDS", "CONFIG_ENV", "DEFAULT_CONFIG", "MACHINETYPE_NAME", "SPACE_NAME",
           "WHEN_PATTERN", "Budget", "Campaign", "Community", "Config", "Machinetype", "Space",
           "SpaceSettings", "build", "config_files", "display", "load", "machinetype_options",
           "parse_when"]
