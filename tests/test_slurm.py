"""`hydra/launcher=slurm`: the sbatch script submitit writes for a 2-node × 4-GPU sweep job, read from a stand-in
`sbatch` (the real submitit and hydra-submitit-launcher run; only the cluster's command is replaced)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, compose_train


def test_slurm_launcher_composes_with_the_cluster_knobs():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (1, 4, 4)
    assert launcher.max_num_timeout == 3 and launcher.signal_delay_s == 120
    compose_train(["trainer=ddp"])  # the trainer side composes too (it runs on the cluster's GPUs)


def test_sbatch_script_for_two_nodes_of_four_gpus(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # records the script it is given, answers with a job id, as sbatch --parsable does
    sbatch.write_text(f'#!/bin/sh\nfor last; do :; done\ncp "$last" {tmp_path}/submitted.sh\necho 4242\n')
    sbatch.chmod(0o755)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for it on a login node; never run here
    (bin_dir / "srun").chmod(0o755)
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.nodes=2",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.setup=[source .venv/bin/activate]",
        "trainer=ddp",
        "trainer.devices=4",
        "+trainer.num_nodes=2",
        "loss=bce,focal",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (tmp_path / "submitted.sh").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if process.poll() is None:  # submitit now waits for the jobs, which no cluster will run
        process.send_signal(signal.SIGKILL)
    output = process.communicate(timeout=60)[0].decode()
    script = (tmp_path / "submitted.sh").read_text() if (tmp_path / "submitted.sh").exists() else ""
    assert script, output[-3000:]
    directives = {line.split()[1] for line in script.splitlines() if line.startswith("#SBATCH")}
    for expected in (
        "--nodes=2",
        "--gpus-per-node=4",
        "--ntasks-per-node=4",
        "--cpus-per-task=8",
        "--mem=64GB",
        "--time=1440",
        "--partition=gpu",
        "--signal=USR2@120",
        "--array=0-1%2",  # the sweep's two jobs as an array (array_parallelism 8, capped at the job count)
    ):
        assert expected in directives, (expected, sorted(directives))
    assert "source .venv/bin/activate" in script and "srun" in script
