"""The data directory lock of `tocsin up`: one process per directory, and a refused second
start names the holder without touching its lock file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tocsin.composition.cli import main
from tocsin.composition.embedded import DataDirInUse, lock_data_dir

HOLD_THE_LOCK = """
import sys
from pathlib import Path
from tocsin.composition.embedded import lock_data_dir
handle = lock_data_dir(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_refused_second_lock_names_the_holder_and_keeps_its_pid(tmp_path: Path) -> None:
    first = lock_data_dir(tmp_path)
    try:
        with pytest.raises(DataDirInUse) as caught:
            lock_data_dir(tmp_path)
        assert (tmp_path / "tocsin.lock").read_text() == str(os.getpid())
        assert f"in use by tocsin process {os.getpid()}" in str(caught.value)
    finally:
        first.close()


def test_a_stale_lock_file_is_taken_over_and_rewritten(tmp_path: Path) -> None:
    (tmp_path / "tocsin.lock").write_text("9999999999")  # a dead process's, longer than ours
    handle = lock_data_dir(tmp_path)
    try:
        assert (tmp_path / "tocsin.lock").read_text() == str(os.getpid())
    finally:
        handle.close()


def test_tocsin_up_on_a_directory_held_by_another_process_exits_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        assert main(["up", "--data-dir", str(tmp_path), "--port", "1"]) == 1
        assert (tmp_path / "tocsin.lock").read_text() == str(holder.pid)
        error = capsys.readouterr().err
        assert f"{tmp_path} is in use by tocsin process {holder.pid}" in error
    finally:
        holder.kill()
        holder.wait()
