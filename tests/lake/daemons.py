"""`mediawatch run --db <lake>` daemons in their own processes, each with its own home on
this machine (MEDIAWATCH_LAKE_HOME), as daemons on several machines would be."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from archive.lake.home import HOME_ENV
from tests.conftest import MEDIAWATCH, REPO
from tests.test_daemon import Daemon


class LakeDaemon(Daemon):
    def __init__(self, config: Path, url: str, home: Path, *options: str) -> None:
        super().__init__(config, home / "daemon")  # its stderr in its home
        self.url, self.home, self.options = url, home, options

    def start(self) -> LakeDaemon:
        command = [str(MEDIAWATCH), "run", "--config", str(self.config), "--db", self.url]
        env = {**os.environ, HOME_ENV: str(self.home)}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*command, *self.options], stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, env=env
            )
        return self
