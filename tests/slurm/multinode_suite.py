"""Two-node Slurm suite: the real workflow trains across two namespaced nodes, and survives four faults.

Needs root and I2SB_TEST_SLURM-style consent (it starts daemons and makes network namespaces); run by
tests/test_slurm_multinode.py, or directly: `sudo .venv/bin/python tests/slurm/multinode_suite.py`.

1. Starts a 2-node cluster (scripts/slurm/start-local-slurm.sh with I2SB_SLURM_NODES=2): slurmctld, slurmdbd,
   MariaDB and munged on the host; slurmd i2sb-n1 / i2sb-n2, each in its own network and UTS namespace, 2 fake
   GPUs each.
2. Clean run (A): the real Snakefile with config/tiny.yaml and `train.resources: {nodes: 2, gpus: 2}` on CPU
   (gloo), up to the gathered samples. Checks every rank's host, rank and master address, that all 4 ranks ended
   with the same weights, and that the weights equal a 1-process run with 4x accumulation (to the tolerance of
   tests/test_train.py's DDP test).
3. Faulted run (B) of the same config in the same folder, after deleting the trained run and the samples:
   (1) node 2's ranks are killed mid-training; (2) the retry is stalled and reaches its time limit; (3) with
   the partition DOWN, both sampling jobs queue and slurmctld restarts under them; (4) every process of sampling
   partition 1's job is killed while it samples. The workflow must finish, each job running once more per fault only, with weights and
   gathered samples equal (byte for byte) to run A's.
4. Prints the fault table, the sbatch and srun lines of the cross-node job, and stops exactly what it started.
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PY = REPO / ".venv" / "bin" / "python"
TASK = "sr4x-pool"
NODES = ("i2sb-n1", "i2sb-n2")
ITERATIONS, LR = 20, 1e-3
START = time.monotonic()
START_UPTIME = float(
    Path("/proc/uptime").read_text().split()[0]
)  # dmesg's clock: seconds since boot


class SuiteFailed(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"multinode: [{time.monotonic() - START:.0f}s] {message}", flush=True)


def run(args: list[str], timeout: float = 30, check: bool = True, **kwargs) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and done.returncode != 0:
        raise SuiteFailed(
            f"{' '.join(map(str, args))} exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return done.stdout


def wait_until(what: str, predicate, timeout: float, alive=None, poll: float = 0.5):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` s or when ``alive()`` fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if alive is not None:
            alive()
        time.sleep(poll)
    raise SuiteFailed(f"timed out after {timeout:.0f} s waiting for {what}")


# --- the cluster -----------------------------------------------------------------------------------------------


def queue() -> list[dict]:
    """Jobs in squeue: id, comment (the plugin's rule_<name>_wildcards_<...>), state, nodes."""
    out = run(["squeue", "-h", "-o", "%A|%k|%T|%N"], check=False, timeout=15)
    return [
        dict(zip(("id", "comment", "state", "nodes"), line.split("|")))
        for line in out.splitlines()
        if line.count("|") == 3
    ]


def accounting(since: str) -> list[dict]:
    """Finished and running jobs from sacct since a time, oldest first."""
    fields = "JobID,Comment,State,NodeList,ExitCode,Elapsed"
    out = run(["sacct", "-a", "-X", "-P", "-n", "-S", since, "-o", fields], check=False, timeout=20)
    keys = [k.lower() for k in fields.split(",")]
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if "|" in line]


def job_state(job_id: str) -> str:
    out = run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"], check=False)
    return out.strip().split(" ")[0] if out.strip() else ""


def running_job(comment_prefix: str, exclude: set[str] = frozenset()) -> dict | None:
    for job in queue():
        if job["comment"].startswith(comment_prefix) and job["id"] not in exclude:
            if job["state"] == "RUNNING":
                return job
    return None


def node_processes(node: str, job_id: str, argv_test) -> list[tuple[int, list[str]]]:
    """Processes inside a node's network namespace that belong to a Slurm job and pass ``argv_test``."""
    found = []
    for pid in run(["ip", "netns", "pids", node], check=False).split():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"SLURM_JOB_ID={job_id}".encode() in environ and argv_test(argv):
            found.append((int(pid), argv))
    return found


def sample_part(comment: str) -> int | None:
    """The partition of a sampling job from the plugin's comment (rule_sample_wildcards_<task>_..._<part>_2)."""
    if comment.startswith(f"rule_sample_wildcards_{TASK}_") and comment.endswith("_2"):
        return int(comment.rsplit("_", 2)[1])
    return None


def running_part(part: int) -> dict | None:
    for job in queue():
        if sample_part(job["comment"]) == part and job["state"] == "RUNNING":
            return job
    return None


def sampling_jobs_pending(train_job: str) -> list[dict] | None:
    """Both sampling jobs, once both are queued behind the DOWN partition; an error as soon as another job of the
    workflow queues there first: sampling waits for it, so the sampling jobs would never be submitted (that was a
    400 s timeout while the checkpoint record was a Slurm job)."""
    queued = [j for j in queue() if j["id"] != train_job]
    held = [
        j for j in queued if j["state"] == "PENDING" and not j["comment"].startswith("rule_sample")
    ]
    if held:
        raise SuiteFailed(
            f"job(s) {held} queued behind the DOWN partition before the sampling jobs: sampling waits for "
            "them, so fault 4 cannot queue the sampling jobs (a train job retried once more than planned, "
            "or a rule between train and sample that runs as a Slurm job, not as a localrule)"
        )
    sampling = [
        j for j in queued if j["comment"].startswith("rule_sample") and j["state"] == "PENDING"
    ]
    return sampling if len(sampling) == 2 else None


def is_train_rank(argv: list[str]) -> bool:
    return argv[1:4] == ["-m", "i2sb", "train"]


def is_sample_script(argv: list[str]) -> bool:
    return len(argv) > 1 and argv[1].endswith("sample.py")


class Cluster:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir

    def start(self) -> None:
        env = {**os.environ, "I2SB_SLURM_NODES": "2", "I2SB_SLURM_FAKE_GPUS": "2"}
        say(f"starting a 2-node cluster in {self.state_dir}")
        out = run(
            [REPO / "scripts/slurm/start-local-slurm.sh", self.state_dir], timeout=600, env=env
        )
        print(out, end="", flush=True)
        os.environ["SLURM_CONF"] = str(self.state_dir / "slurm.conf")

    def stop(self) -> None:
        done = subprocess.run(
            [REPO / "scripts/slurm/stop-local-slurm.sh", self.state_dir],
            capture_output=True,
            text=True,
            timeout=180,
        )
        print(done.stdout[-3000:] + done.stderr[-3000:], end="", flush=True)
        if done.returncode != 0:
            raise SuiteFailed("stop-local-slurm.sh failed: the cluster may not be fully stopped")

    def restart_controller(self) -> None:
        """TERM the recorded slurmctld, then start it again on the same state (its PID recorded the same way)."""
        pids = self.state_dir / "pids"
        ctld = [
            int(p)
            for n, p in (line.split() for line in pids.read_text().splitlines())
            if n == "slurmctld"
        ]
        pid = ctld[-1]
        if Path(f"/proc/{pid}/comm").read_text().strip() != "slurmctld":
            raise SuiteFailed(f"recorded slurmctld PID {pid} is not slurmctld")
        os.kill(pid, signal.SIGTERM)
        wait_until("slurmctld to exit", lambda: not _alive(pid, "slurmctld"), 30)
        with open(self.state_dir / "log" / "slurmctld.out", "a") as out:
            new = subprocess.Popen(
                ["slurmctld", "-D", "-i"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with open(pids, "a") as f:
            f.write(f"slurmctld {new.pid}\n")
        wait_until(
            "the restarted slurmctld to answer",
            lambda: (
                subprocess.run(["scontrol", "ping"], capture_output=True, timeout=15).returncode
                == 0
            ),
            60,
        )


def _alive(pid: int, name: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return Path(f"/proc/{pid}/comm").read_text().strip() == name and stat.split()[2] != "Z"
    except OSError:
        return False


# --- the workflow ----------------------------------------------------------------------------------------------


class Workflow:
    """The project's Snakefile in a working copy of links, with config/tiny.yaml and a 2-node train config."""

    def __init__(self, work: Path, profile: Path, timeout: float):
        self.dir, self.profile, self.timeout = work / "real", profile, timeout
        self.dir.mkdir(parents=True)
        for item in ("Snakefile", "config", "workflow", "envs"):
            (self.dir / item).symlink_to(REPO / item)
        results = self.dir / "results"
        self.config = self.dir / "multinode.yaml"
        self.config.write_text(
            json.dumps(
                {
                    "results_dir": str(results),
                    "tracking": {
                        "uri": f"sqlite:///{results}/mlflow.db",
                        "artifact_root": str(results / "mlartifacts"),
                        # No live MLflow run in training: the suite checks weights, samples and job states,
                        # not MLflow (tests/test_tracking_live.py does), and rank 0's MLflow import and store
                        # set-up held every train attempt's first iteration back by 6-14 s on this machine.
                        "live": False,
                    },
                    "samplers": [{"name": "ddpm"}],  # one sampler: 2 sampling jobs, 1 gather
                    "train": {
                        "iterations": ITERATIONS,
                        "batch_size": 8,  # 4 ranks x microbatch 2; one process: 4 accumulation steps
                        "microbatch": 2,
                        "lr": LR,
                        "precision": "fp32",
                        "checkpoint_every": 2,
                        "validate_every": ITERATIONS,
                        "resources": {
                            "gpus": 2,
                            "nodes": 2,
                            "cpus_per_task": 1,
                            "mem_mb": 1000,
                            "runtime_min": 10,
                            "rendezvous_timeout_s": 120,
                        },
                    },
                },
                indent=1,
            )
        )
        self.run_dir = results / "tiny"
        self.train_dir = self.run_dir / "train" / TASK
        self.proc: subprocess.Popen | None = None

    def start(self, name: str) -> None:
        self.log = self.dir / f"snakemake-{name}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [PY, REPO / "tests/slurm/snakemake_polling.py", "--snakefile", self.dir / "Snakefile", "--directory", self.dir,
                 "--profile", self.profile, "--verbose", "--configfile", "config/tiny.yaml", self.config,
                 "--until", "gather"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        self.started = time.monotonic()

    def alive(self) -> None:
        """Fail if snakemake ended early or ran past its time."""
        if self.proc.poll() is not None:
            raise SuiteFailed(f"snakemake exited {self.proc.returncode} early:\n{self.tail()}")
        if time.monotonic() - self.started > self.timeout:
            self.kill()
            raise SuiteFailed(f"snakemake ran past {self.timeout:.0f} s:\n{self.tail()}")

    def finish(self) -> None:
        left = self.timeout - (time.monotonic() - self.started)
        try:
            rc = self.proc.wait(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            self.kill()
            raise SuiteFailed(f"snakemake ran past {self.timeout:.0f} s:\n{self.tail()}") from None
        if rc != 0:
            raise SuiteFailed(f"snakemake exited {rc}:\n{self.tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own snakemake's session, nothing else
            self.proc.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def samples(self) -> Path:
        (found,) = self.run_dir.glob(f"samples/{TASK}/**/samples.npz")
        return found

    def parts(self) -> list[Path]:
        return sorted(self.samples().parent.glob("part_*.npz"))


def checkpoint_iteration(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["iteration"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return -1


def weights(path: Path) -> dict:
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    return {"net": saved["net"], "ema": saved["ema"]}


def same_weights(a: dict, b: dict) -> bool:
    import torch

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            elif isinstance(v, torch.Tensor):
                yield f"{prefix}{k}", v

    fa, fb = dict(flat(a)), dict(flat(b))
    return fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa)


def check_ranks(summary: dict) -> list[dict]:
    ranks = summary["ranks"]
    layout = [(r["rank"], r["local_rank"], r["host"]) for r in ranks]
    expected = [(0, 0, NODES[0]), (1, 1, NODES[0]), (2, 0, NODES[1]), (3, 1, NODES[1])]
    if layout != expected or summary["world_size"] != 4:
        raise SuiteFailed(f"ranks (rank, local rank, host) {layout}, expected {expected}")
    if len({r["weights_sha256"] for r in ranks}) != 1:
        raise SuiteFailed(f"ranks ended with different weights: {ranks}")
    masters = {r["master"] for r in ranks}
    if len(masters) != 1 or not masters.pop().startswith(f"{NODES[0]}:"):
        raise SuiteFailed(f"rendezvous not on the first node: {ranks}")
    return ranks


SHORT = 3  # iterations of the accumulation check: tests/test_train.py's DDP test compares after 3 as well


def accumulation_check(workflow: Workflow) -> str:
    """4 ranks on 2 nodes (srun from the host) against 1 process with 4x accumulation, after SHORT iterations.

    Same config as run A (its config.json); the tolerance of tests/test_train.py's 2-rank test (99% of the weights
    equal to 1e-6, the others within 10% of the largest Adam move, iterations x lr), with the exception noted below.
    (After 20 Adam steps the float summation-order differences have grown past 1e-6 in most weights, so the check
    is done at 3 iterations, like the unit test.)
    """
    import torch

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE"))}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    # --data-dir: the folder the train rule passes (the converted LMDBs of run A, RUN/data)
    args = ["-m", "i2sb", "train", "--config", workflow.run_dir / "config.json", "--task", TASK,
            "--data-dir", workflow.run_dir / "data", "--set", f"train.iterations={SHORT}",
            "--no-progress"]  # fmt: skip
    out = {"ranks": workflow.dir / "short-4-ranks", "single": workflow.dir / "short-1-process"}
    single_env = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
    with open(f"{out['single']}.log", "w") as log:
        single = subprocess.Popen(
            [PY, *args, "--out", out["single"]], stdout=log, stderr=subprocess.STDOUT,
            env=single_env, cwd=workflow.dir,
        )  # fmt: skip
        run(["srun", "--nodes=2", "--ntasks-per-node=2", "--gres=gpu:2", "--cpus-per-gpu=1", "--mem=1000",
             "-t", "10", PY, *args, "--out", out["ranks"]], timeout=900, env=env, cwd=workflow.dir)  # fmt: skip
        if single.wait(timeout=900) != 0:
            raise SuiteFailed(f"the 1-process run failed; see {out['single']}.log")
    check_ranks(json.loads((out["ranks"] / "summary.json").read_text()))
    flat = {
        k: torch.cat([t.flatten() for t in weights(v / "latest.pt")["net"].values()])
        for k, v in out.items()
    }
    difference = (flat["single"] - flat["ranks"]).abs()
    exact, bound = float((difference < 1e-6).float().mean()), 0.1 * SHORT * LR
    within = float((difference < bound).float().mean())
    verdict = (
        f"{exact:.2%} of {difference.numel()} weights within 1e-6, {within:.4%} within {bound:.0e} "
        f"(10% of the largest Adam move), max |diff| {float(difference.max()):.2e}"
    )
    # tests/test_train.py asks 99% within 1e-6 and every weight within the bound. Across 4 ranks on this data a
    # handful of weights whose gradient is ~0 get an Adam step of another sign (measured: 1 of 827491 at
    # 3.7e-4), so here "every" is 99.99%, and no weight may differ by a whole Adam move (SHORT x lr).
    if not (exact > 0.99 and within > 0.9999 and difference.max() < SHORT * LR):
        raise SuiteFailed(
            f"4 ranks on 2 nodes differ from 1 process with 4x accumulation: {verdict}"
        )
    return verdict


TIMINGS = {
    "seconds",
    "images_per_s",
    "seconds_per_nfe",
}  # measured, so never equal between two runs


def same_samples(a: Path, b: Path) -> tuple[bool, str]:
    """Every array byte for byte, and the meta record equal but for its timings."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        if x.files != y.files:
            return False, f"arrays {x.files} vs {y.files}"
        for key in x.files:
            if key == "meta":
                ma, mb = json.loads(str(x[key])), json.loads(str(y[key]))
                differ = {k for k in ma.keys() | mb.keys() if ma.get(k) != mb.get(k)} - TIMINGS
                if differ:
                    return False, f"meta differs in {sorted(differ)}"
            elif x[key].dtype != y[key].dtype or x[key].tobytes() != y[key].tobytes():
                return False, f"array {key} differs"
    return True, "arrays byte for byte, meta but its timings"


# --- the suite -------------------------------------------------------------------------------------------------


def clean_run(workflow: Workflow) -> dict:
    say("run A (clean): real workflow, train on 2 nodes x 2 ranks")
    workflow.start("clean")
    workflow.finish()
    summary = json.loads((workflow.train_dir / "summary.json").read_text())
    ranks = check_ranks(summary)
    for r in ranks:
        say(f"  rank {r['rank']} (local {r['local_rank']}) on {r['host']}, master {r['master']}, "
            f"weights {r['weights_sha256'][:12]}")  # fmt: skip
    log = workflow.log.read_text(errors="replace")
    sbatch = sorted(
        {line.split("sbatch call: ", 1)[1].split(" --wrap")[0] for line in log.splitlines()
         if "sbatch call: " in line and "rule_train" in line}
    )  # fmt: skip
    job_logs = list((workflow.dir / ".snakemake" / "slurm_logs" / "rule_train").rglob("*.log"))
    srun = sorted({line[line.index("srun --nodes"):].split(" > ")[0] for p in job_logs
                   for line in p.read_text(errors="replace").splitlines() if "srun --nodes" in line})  # fmt: skip
    reference = workflow.dir / "reference"
    reference.mkdir()
    shutil.copy2(workflow.train_dir / "latest.pt", reference / "latest.pt")
    for path in [workflow.samples(), *workflow.parts()]:
        shutil.copy2(path, reference / path.name)
    workflow.reference = reference
    say(f"run A finished in {time.monotonic() - workflow.started:.0f} s; weights and samples kept")
    return {"sbatch": sbatch, "srun": srun, "seconds": time.monotonic() - workflow.started}


def faulted_run(
    workflow: Workflow, cluster: Cluster, partition: str
) -> tuple[list[list[str]], dict]:
    """Run B: same config after deleting the trained run and samples; four faults on the way."""
    import torch  # noqa: F401  (imported before the timed waits)

    shutil.rmtree(workflow.train_dir)
    shutil.rmtree(workflow.run_dir / "samples")
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    # The job log keeps every attempt (i2sb.joblog), the clean run's and fault 1's included: the
    # retry's start is the log's last "iterations N -> ..." line.
    train_log = workflow.run_dir / "logs" / "train" / f"{TASK}.log"
    time.sleep(1)
    say("run B (faults): the same workflow from the trained run on")
    workflow.start("faults")
    alive, latest = workflow.alive, workflow.train_dir / "latest.pt"
    rows, info = [], {}

    # (1) node 2's ranks killed mid-training
    job1 = wait_until("the train job to run", lambda: running_job("rule_train"), 900, alive)
    wait_until(
        "a checkpoint at iteration >= 4", lambda: checkpoint_iteration(latest) >= 4, 900, alive, 0.3
    )
    seen = checkpoint_iteration(latest)
    victims = node_processes(NODES[1], job1["id"], is_train_rank)
    if len(victims) != 2:
        raise SuiteFailed(f"expected 2 train ranks in {NODES[1]}, found {victims}")
    for pid, _ in victims:
        os.kill(pid, signal.SIGKILL)
    say(f"fault 1: killed ranks {[p for p, _ in victims]} on {NODES[1]} (job {job1['id']}; latest.pt "
        f"at iteration {seen} just before)")  # fmt: skip
    wait_until(
        f"job {job1['id']} to end",
        lambda: job_state(job1["id"]) not in ("", "RUNNING", "PENDING", "COMPLETING"),
        120,
        alive,
    )
    state1 = job_state(job1["id"])
    # The resume point is latest.pt once the job has ended, not the one read before the kill: all 4 ranks may have
    # finished the next checkpoint's iterations while rank 0 was still writing it, so node 1 publishes one more
    # latest.pt after node 2 died (then fails in the barrier that follows the save). Taking the earlier number
    # made the next wait below pass at once, before the retry's ranks existed (a flake: "expected 2 train ranks").
    at = checkpoint_iteration(latest)
    say(f"  job {job1['id']}: {state1}; latest.pt at iteration {at} (the retry resumes there)")

    # (2) the retry stalls (node 2's ranks stopped) and Slurm ends it at its time limit
    job2 = wait_until(
        "the retried train job", lambda: running_job("rule_train", {job1["id"]}), 900, alive
    )

    def retry_ranks_past_resume_point():
        if checkpoint_iteration(latest) < at + 2:
            return None
        ranks = node_processes(NODES[1], job2["id"], is_train_rank)
        return ranks if len(ranks) == 2 else None

    stalled = wait_until(
        f"the retry's 2 ranks in {NODES[1]} and a checkpoint past the resume point ({at})",
        retry_ranks_past_resume_point,
        900,
        alive,
        0.3,
    )
    resumed2 = checkpoint_iteration(latest)
    starts = re.findall(
        rf"train {TASK}: iterations (\d+) -> {ITERATIONS}", train_log.read_text(errors="replace")
    )
    if starts[-1:] != [str(at)]:
        raise SuiteFailed(
            f"the retry (job {job2['id']}) started at iterations {starts[-1:]} (its log's last "
            f"start), expected [{at}]"
        )
    for pid, _ in stalled:
        os.kill(pid, signal.SIGSTOP)
    run(["scontrol", "update", f"JobId={job2['id']}", "TimeLimit=1"])
    say(
        f"fault 2: job {job2['id']} stalled at checkpoint {resumed2} (ranks stopped), time limit set to 1 min"
    )
    t0 = time.monotonic()
    wait_until(
        f"job {job2['id']} to hit its time limit",
        lambda: job_state(job2["id"]) not in ("", "RUNNING", "PENDING", "COMPLETING"),
        180,
        alive,
    )
    state2, limit_s = job_state(job2["id"]), time.monotonic() - t0
    leftovers = sorted(p.name for p in workflow.train_dir.rglob("*.tmp*"))
    kept = checkpoint_iteration(latest)
    half_written = leftovers or kept < resumed2 or (workflow.train_dir / "summary.json").exists()
    for line in (workflow.train_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # every metrics row is whole
    say(f"  job {job2['id']}: {state2} {limit_s:.0f} s after the limit was set; latest.pt at {kept}, "
        f"temporary files {leftovers or 'none'}")  # fmt: skip

    # (3) both sampling jobs queue behind a DOWN partition, and slurmctld restarts under them
    job3 = wait_until(
        "the second retry of train",
        lambda: running_job("rule_train", {job1["id"], job2["id"]}),
        900,
        alive,
    )
    run(["scontrol", "update", f"PartitionName={partition}", "State=DOWN"])
    pending = wait_until(
        "2 sampling jobs pending", lambda: sampling_jobs_pending(job3["id"]), 400, alive
    )
    pending_ids = sorted(j["id"] for j in pending)
    cluster.restart_controller()
    after = sorted(j["id"] for j in queue() if j["comment"].startswith("rule_sample"))
    run(["scontrol", "update", f"PartitionName={partition}", "State=UP"])
    say(
        f"fault 4: slurmctld restarted with sampling jobs {pending_ids} pending; after restart: {after}"
    )
    if after != pending_ids:
        raise SuiteFailed(f"pending jobs {pending_ids} before the restart, {after} after")

    # (4) sampling partition 1 killed mid-way
    part1 = wait_until(
        "partition 1's job to run",
        lambda: running_part(1),
        900,
        alive,
        0.3,
    )
    # Mid-way: its sampling script runs (found by SLURM_JOB_ID in the node's namespace). Then every process of the
    # job dies at once (batch shell, job step, script), as on a node that crashed or an OOM kill of the job. A lone
    # script dying would be restarted inside the same job by the rule's own `retries`; `scancel` would leave the job
    # "CANCELLED by 0" in sacct, which snakemake-executor-plugin-slurm 2.8.0 never reads as ended (docs/slurm.md).
    wait_until(
        "partition 1's sampling process",
        lambda: [v for node in NODES for v in node_processes(node, part1["id"], is_sample_script)],
        120, alive, 0.2,
    )  # fmt: skip
    part0_before = [(j["id"], j["state"]) for j in queue() if sample_part(j["comment"]) == 0]
    victims = [p for node in NODES for p, _ in node_processes(node, part1["id"], lambda argv: True)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    say(f"fault 3: killed the {len(victims)} processes of partition 1's job {part1['id']} while it sampled "
        f"(partition 0: {part0_before})")  # fmt: skip
    workflow.finish()
    say(f"run B finished in {time.monotonic() - workflow.started:.0f} s")

    # --- checks of run B against run A
    jobs = [j for j in accounting(since) if j["comment"]]
    say("run B jobs: " + ", ".join(f"{j['jobid']} {j['comment']} {j['state']}" for j in jobs))
    kinds = Counter(
        "train" if j["comment"] == f"rule_train_wildcards_{TASK}"
        else f"part {sample_part(j['comment'])}" if sample_part(j["comment"]) is not None
        else "gather" if j["comment"].startswith(f"rule_gather_wildcards_{TASK}_")
        else j["comment"]
        for j in jobs
    )  # fmt: skip
    expected = {"train": 3, "part 1": 2, "part 0": 1, "gather": 1}
    if dict(kinds) != expected:
        raise SuiteFailed(f"jobs per rule {dict(kinds)}, expected {expected} (one extra per fault)")
    part1_key = next(j["comment"] for j in jobs if sample_part(j["comment"]) == 1)
    state_p1 = next(j["state"] for j in jobs if j["comment"] == part1_key)
    summary = json.loads((workflow.train_dir / "summary.json").read_text())
    check_ranks(summary)
    if summary["resumed_from"] != kept:
        raise SuiteFailed(
            f"the last train attempt resumed from {summary['resumed_from']}, latest.pt was at {kept}"
        )
    same = same_weights(weights(latest), weights(workflow.reference / "latest.pt"))
    compared = [
        same_samples(p, workflow.reference / p.name)
        for p in [workflow.samples(), *workflow.parts()]
    ]
    samples_equal = all(ok for ok, _ in compared)
    files_equal = (
        workflow.samples().read_bytes() == (workflow.reference / "samples.npz").read_bytes()
    )
    say(
        f"samples.npz and parts against run A: {[why for _, why in compared]}; file bytes equal: {files_equal}"
    )
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    rows.append([f"1. node 2's ranks killed after checkpoint {seen}",
                 f"job {job1['id']} {state1}",
                 f"retry (job {job2['id']}) resumed from latest.pt (iteration {at}"
                 + (", written by rank 0 after the kill)" if at != seen else ")"),
                 yes(same)])  # fmt: skip
    rows.append(["2. job stalled, time limit 1 min",
                 f"job {job2['id']} {state2} (KillWait 5 s)",
                 f"retry (job {job3['id']}) resumed from iteration {summary['resumed_from']}; "
                 f"no temporary or partial file" if not half_written else "HALF-WRITTEN FILES",
                 yes(same and not half_written)])  # fmt: skip
    rows.append(["3. sampling partition 1 killed mid-way",
                 f"job {part1['id']} {state_p1}",
                 "retry recomputed partition 1 only (partition 0: one job)",
                 yes(samples_equal) + " (samples.npz: arrays byte for byte)"])  # fmt: skip
    rows.append(["4. slurmctld restarted, 2 jobs queued",
                 f"jobs {' '.join(pending_ids)} kept their ids and ran",
                 "snakemake waited; every job ran once (sacct)",
                 yes(same and samples_equal)])  # fmt: skip
    if not (same and samples_equal) or half_written:
        raise SuiteFailed("a faulted run differs from the clean run:\n" + table(rows))
    return rows, info


def table(rows: list[list[str]]) -> str:
    head = ["fault", "what Slurm did", "what the workflow did", "equal to the clean run"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join(
        [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )


REPORT_START, REPORT_END = "----- failure report -----", "----- end of failure report -----"
DAEMON_EVENTS = re.compile(
    r"error|kill|signal|oom|time ?limit|timeout|terminat|fail|cancel|drain|down", re.I
)


def failure_report(err: BaseException, cluster: Cluster, workflow: Workflow | None) -> str:
    """What a failed run needs to be understood from the CI log alone: the whole error first, then the jobs as Slurm
    recorded them, the daemons' own lines about them, the kernel's OOM lines, and the ends of the job logs."""
    error = str(err) if isinstance(err, SuiteFailed) else "".join(traceback.format_exception(err))
    parts = [f"FAILED: {error}", f"load average: {Path('/proc/loadavg').read_text().strip()}"]

    def section(title: str, text: str) -> None:
        parts.append(f"--- {title}\n{text.rstrip() or '(nothing)'}")

    with contextlib.suppress(Exception):
        section(
            "sacct (jobs and steps of this suite)",
            run(["sacct", "-a", "-S", "now-1hours", "-o",
                 "JobID%14,JobName%18,Comment%44,State%12,ExitCode,DerivedExitCode,NodeList%16,Start,End,Elapsed"],
                check=False, timeout=20),
        )  # fmt: skip
    with contextlib.suppress(Exception):
        # sacct shows a pending job without its rule or reason: a record job held PENDING (PartitionDown) ahead of
        # the sampling jobs read as "Unknown" there for one undiagnosed CI failure.
        section(
            "squeue (jobs still queued: id, rule, state, reason, partition, nodes)",
            run(["squeue", "-o", "%.8A %.44k %.10T %.16r %.10P %N"], check=False, timeout=15),
        )
    for log in sorted((cluster.state_dir / "log").glob("slurm*.log")):
        lines = log.read_text(errors="replace").splitlines()
        events = [line for line in lines if DAEMON_EVENTS.search(line)]
        section(f"{log.name}: last 40 of {len(events)} lines about errors, kills, signals, limits",
                "\n".join(events[-40:]))  # fmt: skip
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=20)
    if dmesg.returncode == 0:
        # OOM-killer lines since the suite started ("[seconds since boot] ..."); older ones are not this suite's.
        stamp = re.compile(r"^\[\s*(\d+\.\d+)\]")
        oom = [
            line
            for line in dmesg.stdout.splitlines()
            if re.search(r"oom|killed process|out of memory", line, re.I)
            and (m := stamp.match(line)) is not None
            and float(m.group(1)) >= START_UPTIME
        ]
        section("dmesg: OOM-killer lines since the suite started", "\n".join(oom[-20:]))
    else:
        section("dmesg", f"not readable here: {dmesg.stderr.strip()}")
    if workflow is not None:
        if getattr(workflow, "log", None) is not None:
            section(f"end of {workflow.log}", workflow.tail(60))
        for log in sorted(workflow.run_dir.glob("logs/**/*.log")):
            section(f"end of {log}", "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
        slurm_logs = sorted(
            (workflow.dir / ".snakemake" / "slurm_logs").rglob("*.log"), key=os.path.getmtime
        )
        # The Slurm job logs written last (the job that failed among them).
        for log in slurm_logs[-4:]:
            text = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            section(f"end of Slurm job log {log}", text)
    keep_to = os.environ.get("I2SB_SLURM_LOG_DIR")
    if keep_to:  # the daemons' and jobs' full logs outlive the suite's folder
        dest = Path(keep_to)
        shutil.copytree(cluster.state_dir / "log", dest / "daemons", dirs_exist_ok=True)
        if workflow is not None:
            for log in workflow.dir.glob("snakemake-*.log"):
                shutil.copy2(log, dest / log.name)
            if (workflow.run_dir / "logs").is_dir():
                shutil.copytree(workflow.run_dir / "logs", dest / "rule-logs", dirs_exist_ok=True)
            if (workflow.dir / ".snakemake" / "slurm_logs").is_dir():
                shutil.copytree(
                    workflow.dir / ".snakemake" / "slurm_logs",
                    dest / "slurm-job-logs",
                    dirs_exist_ok=True,
                )
        parts.append(f"full logs copied to {dest}")
    return "\n".join([REPORT_START, *parts, REPORT_END])


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("multinode_suite: needs root (daemons, network namespaces)")
    keep = os.environ.get("I2SB_SLURM_KEEP") == "1"
    work = Path(tempfile.mkdtemp(prefix="i2sb-multinode."))
    cluster = Cluster(work / "state")
    timeout = float(os.environ.get("I2SB_SLURM_TIMEOUT", "1200"))
    workflow = None
    try:
        cluster.start()
        env = dict(line.removeprefix("export ").split("=", 1) for line in
                   (cluster.state_dir / "env.sh").read_text().splitlines() if line.startswith("export "))  # fmt: skip
        profile = work / "profile"
        run([PY, REPO / "scripts/slurm/merge_profile.py", REPO / "profiles/slurm",
             REPO / "tests/slurm/profile-local", profile], env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        workflow = Workflow(work, profile, timeout)
        a = clean_run(workflow)
        say(
            f"accumulation check: {SHORT} iterations on 4 ranks over 2 nodes (srun) and in 1 process"
        )
        a["accumulation"] = accumulation_check(workflow)
        say(f"  1 process with 4x accumulation vs 4 ranks on 2 nodes: {a['accumulation']}")
        rows, info = faulted_run(workflow, cluster, env["I2SB_SLURM_PARTITION"])
        print("\nCross-node train job (run A):", *a["sbatch"], *a["srun"], sep="\n  ")
        print(
            f"4 ranks vs 1 process with 4x accumulation ({SHORT} iterations): {a['accumulation']}"
        )
        print("\n" + table(rows) + "\n")
        say("PASSED")
        return 0
    except Exception as err:  # noqa: BLE001  (any failure gets the report; the exit code says it failed)
        say("FAILED; the report follows")
        if workflow is not None:
            workflow.kill()  # before reading the logs: nothing writes to them any more
        try:
            print(failure_report(err, cluster, workflow), flush=True)
        except Exception as report_err:  # noqa: BLE001
            print(
                f"{REPORT_START}\nFAILED: {err!r}\n(the report itself failed: {report_err!r})\n{REPORT_END}"
            )
        return 1
    finally:
        if workflow is not None:
            workflow.kill()
        cluster.stop()
        if keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        say(f"two-node suite: {time.monotonic() - START:.0f} s wall time")


if __name__ == "__main__":
    sys.exit(main())
