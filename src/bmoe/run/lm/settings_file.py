"""Reading a language model's settings file (``lm.json``, as ``LMRunConfig.to_dict`` writes it): a run directory's,
a deployment's, or the one a validator or edge process is handed with ``--lm``.

Must not know: click, what the settings are read for.
"""

from __future__ import annotations

import json
from pathlib import Path

from bmoe.fileio import read_regular_text
from bmoe.run.config_checks import ConfigError
from bmoe.run.lm.config import LMRunConfig


def read_lm_settings(path: Path) -> LMRunConfig:
    """``path``'s settings, validated; ConfigError (one line naming the file) for anything else."""
    try:
        return LMRunConfig.from_dict(json.loads(read_regular_text(path)))
    except ConfigError as err:
        raise ConfigError(f"{path}: not a language model's settings: {err}") from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{path}: not a language model's settings ({type(err).__name__}: {err})") from None
