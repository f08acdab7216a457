"""A real ``bmoe serve`` process for the tests, on 127.0.0.1 and a port the kernel picks (read from its first
line), and the tiny trained run it serves."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import torch

from tests.cli.helpers import command_environment

START_TIMEOUT_S = 120.0  # torch's import alone takes 2.5-20 s on 2 shared cores
TEXT = "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. " * 40
CONTEXT = 256
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.,:;'!?-"  # what prompts may use


def tiny_run(directory: Path, seed: int = 5) -> Path:
    """A ``bmoe lm train`` run directory of a tiny model (2 layers, d = 32, 4 experts top-2, context 256: room for
    long generations) trained one step through B-MoE, its character tokenizer knowing :data:`ALPHABET`."""
    from bmoe.lm.char_tokenizer import CharTokenizer
    from bmoe.run.lm.config import LMRunConfig
    from bmoe.run.lm.session import LMSession
    from tests.lm.lm_runs import TINY_LM

    tokenizer = CharTokenizer.from_text(ALPHABET + TEXT)
    ids = torch.tensor(tokenizer.encode(TEXT), dtype=torch.int64)
    config = LMRunConfig.build({**TINY_LM, "steps": 1, "context": CONTEXT},
                               {"num_edges": 3, "difficulty": 0, "seed": seed})
    cut = int(ids.numel() * 0.9)
    session = LMSession(config, tokenizer.to_bytes(), tokenizer.vocab_size, ids[:cut], ids[cut:], directory)
    session.train()
    session.close()
    return directory


class ServeProcess:
    """``python -m bmoe serve ARGS --host 127.0.0.1 --port 0 --threads 1`` until :meth:`close`."""

    def __init__(self, *args: str | Path) -> None:
        command = [sys.executable, "-m", "bmoe", "serve", *map(str, args), "--host", "127.0.0.1", "--port", "0",
                   "--threads", "1"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=command_environment(200))
        self.first_line = self._first_line()
        if not self.first_line.startswith("serving "):
            self.close()
            raise AssertionError(f"bmoe serve did not start: {self.first_line!r} {self.process.stderr.read()}")
        self.url = self.first_line.split(" at ", 1)[1].split()[0]  # http://127.0.0.1:PORT/v1

    def _first_line(self) -> str:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        return lines[0].strip() if lines else ""

    def client(self, timeout: float = 60) -> openai.OpenAI:
        """The official client, on this server (no retries: a refusal must show at once)."""
        return openai.OpenAI(base_url=self.url, api_key="unused", max_retries=0, timeout=timeout)

    def stats(self) -> dict[str, int]:
        """The scheduler's counts (``GET /bmoe/stats``)."""
        return httpx.get(self.bmoe_url("/bmoe/stats")).json()

    def bmoe_url(self, path: str) -> str:
        return self.url.removesuffix("/v1") + path

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
