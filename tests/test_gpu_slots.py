"""Local GPU slots: concurrent jobs get distinct devices, and a job waits while none is free."""

import os
import subprocess
import sys
import time

import pytest

from mtarl.gpu_slots import gpu_slots

HOLD = """
import sys, time
from mtarl.gpu_slots import gpu_slots
with gpu_slots(1, devices=["0", "1"], lock_dir=sys.argv[1], poll_seconds=0.05) as taken:
    import os
    print(os.environ["CUDA_VISIBLE_DEVICES"], time.time(), flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_concurrent_jobs_get_distinct_devices_and_the_third_waits(tmp_path):
    jobs = [subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "1.5"], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    time.sleep(0.8)
    started = time.time()
    third = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path), "0"], capture_output=True, text=True,
                           timeout=30)
    first_two = [j.communicate(timeout=30)[0].split()[0] for j in jobs]
    assert sorted(first_two) == ["0", "1"], "two jobs at once never share a device"
    device, when = third.stdout.split()
    assert device in ("0", "1") and float(when) - started > 0.3, "the third job waited for a free device"


def test_no_devices_configured_is_a_no_op(monkeypatch):
    monkeypatch.delenv("MTARL_LOCAL_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    with gpu_slots(1) as taken:
        assert taken == [] and os.environ["CUDA_VISIBLE_DEVICES"] == "7"


def test_more_gpus_than_listed_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="needs 3 GPUs"):
        with gpu_slots(3, devices=["0", "1"], lock_dir=str(tmp_path)):
            pass
