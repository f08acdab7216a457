"""Compile contracts/BmoeLedger.vy and contracts/BmoePayments.vy into src/bmoe/ethereum/BmoeLedger.json and
BmoePayments.json (run after editing a contract).

    .venv/bin/python tools/build_contract.py

The test ``tests/ethereum/test_artifact.py`` fails until the committed artifact equals a fresh compile.
"""

from __future__ import annotations

from bmoe.ethereum.artifact import (
    ARTIFACT_PATH,
    PAYMENTS_ARTIFACT_PATH,
    PAYMENTS_SOURCE_PATH,
    SOURCE_PATH,
    artifact_text,
    compile_artifact,
)


def main() -> None:
    for source, artifact in ((SOURCE_PATH, ARTIFACT_PATH), (PAYMENTS_SOURCE_PATH, PAYMENTS_ARTIFACT_PATH)):
        body = compile_artifact(source)
        artifact.write_text(artifact_text(body), encoding="utf-8")
        print(f"wrote {artifact} ({body['version']}, {body['compiler']}, "
              f"runtime {len(body['bytecode_runtime']) // 2 - 1} bytes)")


if __name__ == "__main__":
    main()
