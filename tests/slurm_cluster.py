"""A real one-node SLURM cluster on 127.0.0.1 for the tests: munged, slurmctld and slurmd
started from a private folder (their own munge key, socket, slurm.conf, state and logs), so a
system installation is neither needed nor touched. Client commands find the cluster through
SLURM_CONF in `LocalSlurm.env`.

The tests install nothing: tests/setup_slurm.sh (run by `make test` before pytest) installs
the Debian packages (slurmctld, slurmd, slurm-client, munge). Without them `unavailable()` says
so, naming that script, and the tests skip.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import free_port

SETUP_SCRIPT = Path(__file__).with_name("setup_slurm.sh")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


def unavailable() -> str | None:
    """None when a cluster can be started here, else the reason it cannot."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if not missing:
        return None
    setup = SETUP_SCRIPT.relative_to(SETUP_SCRIPT.parents[1])  # tests/setup_slurm.sh
    return (
        f"SLURM is not installed ({', '.join(missing)} missing): `sh {setup}` as root installs "
        "it (`make test` runs it)"
    )


class LocalSlurm:
    """munged + slurmctld + slurmd under `root`; `start()`, then `sbatch`, then `stop()`."""

    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname()
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pid_files = [root / "munged.pid", root / "slurmctld.pid", root / "slurmd.pid"]

    def start(self, timeout: float = 60) -> None:
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        self.munge_socket = r / "munge.socket"
        self.conf.write_text(self.slurm_conf())
        self.daemon(
            "munged", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={r / 'munged.pid'}", f"--log-file={r / 'log' / 'munged.log'}",
            f"--seed-file={r / 'munged.seed'}",
        )  # fmt: skip
        self.daemon("slurmctld", "-f", str(self.conf))
        self.daemon("slurmd", "-f", str(self.conf))
        deadline = time.monotonic() + timeout
        while True:
            state = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up (sinfo: {state!r}):\n{self.logs()}")
            time.sleep(0.3)

    def slurm_conf(self) -> str:
        r = self.root
        cpus = os.cpu_count() or 1
        return f"""\
ClusterName=ganmotion-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (120 by default).
AuthInfo=socket={self.munge_socket},cred_expire=10
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=1
StateSaveLocation={r / "state"}
SlurmdSpoolDir={r / "spool"}
SlurmctldPidFile={r / "slurmctld.pid"}
SlurmdPidFile={r / "slurmd.pid"}
SlurmctldLogFile={r / "log" / "slurmctld.log"}
SlurmdLogFile={r / "log" / "slurmd.log"}
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""

    def daemon(self, program: str, *args: str) -> None:
        result = subprocess.run([program, *args], env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{program} did not start: {result.stderr.strip()}\n{self.logs()}")

    def stop(self) -> None:
        for pid_file in reversed(self.pid_files):
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            for _ in range(100):  # the daemons save state on SIGTERM; let them finish
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(self.root.glob("log/*"))
        )

    def run(self, *command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
        return result

    def sbatch(self, *args: str, env: dict | None = None, cwd: Path | None = None) -> str:
        """Submit; the job id (for an array, the array's id)."""
        result = subprocess.run(
            ["sbatch", "--parsable", *args],
            env={**self.env, **(env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip().split(";")[0]

    def jobs(self, job_id: str) -> list[dict[str, str]]:
        """`scontrol show job` of a job (one record per array task) as key=value dicts."""
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line]

    def wait(self, job_id: str, timeout: float = 300) -> list[dict[str, str]]:
        """Poll until every task of the job is in a final state; their records."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs(job_id)
            if jobs and all(j["JobState"] in FINAL_STATES for j in jobs):
                return jobs
            if time.monotonic() > deadline:
                self.run("scancel", job_id, check=False)
                raise TimeoutError(f"job {job_id} still running after {timeout} s: {jobs}")
            time.sleep(0.5)
