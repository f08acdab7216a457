"""Compile contracts/BmoeLedger.vy into src/bmoe/ethereum/BmoeLedger.json (run after editing the contract).

    .venv/bin/python tools/build_contract.py

The test ``tests/ethereum/test_artifact.py`` fails until the committed artifact equals a fresh compile.
"""

from __future__ import annotations

from bmoe.ethereum.artifact import ARTIFACT_PATH, artifact_text, compile_artifact


def main() -> None:
    body = compile_artifact()
    ARTIFACT_PATH.write_text(artifact_text(body), encoding="utf-8")
    print(f"wrote {ARTIFACT_PATH} ({body['version']}, {body['compiler']}, "
          f"runtime {len(body['bytecode_runtime']) // 2 - 1} bytes)")


if __name__ == "__main__":
    main()
