"""The inter-process lock makes a second process wait until the first releases it."""
import subprocess
import sys
import time

from research.data.lock import exclusive, lock_path


def test_second_process_waits_for_the_lock(tmp_path):
    path = lock_path(str(tmp_path), "wmt14_translate/de-en")
    assert path.startswith(str(tmp_path)) and "/" not in path[len(str(tmp_path)) + 1:]
    code = ("import sys, time; from research.data.lock import exclusive\n"
            "with exclusive(sys.argv[1]): print(time.time())")
    with exclusive(path):
        child = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)  # the child has started and is blocked on the lock
        released = time.time()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and float(out) >= released
