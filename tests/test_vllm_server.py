"""vLLM server mode without a GPU: the configuration's checks, the commands and environments mtarl.launch builds
(checked against TRL 1.16's own `trl vllm-serve` parser), and the server's lifecycle around the training launcher,
with a fake `trl` that answers /health started for real."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mtarl import config as cfg
from mtarl import launch
from mtarl import plan

REPO = Path(__file__).resolve().parents[1]
# 4 of the paper's 8 GPUs serve vLLM; gradient accumulation 64 keeps the 4 training processes' micro-batch at 4.
SERVER = """
train:
  vllm_server_gpus: 4
  defaults:
    gradient_accumulation_steps: 64
    vllm: {mode: server, gpu_memory_utilization: 0.9, sleep_mode: false}
"""


def paper(tmp_path, override: str = SERVER) -> dict:
    path = tmp_path / "override.yaml"
    path.write_text(textwrap.dedent(override))
    return cfg.load(REPO / "config/paper.yaml", path)


def errors(config: dict) -> str:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(config)
    return str(err.value)


# -- configuration ---------------------------------------------------------------------------------------------------

def test_server_mode_settings_count_training_processes_only(tmp_path):
    config = cfg.validate(paper(tmp_path))
    settings = cfg.train_settings(config, "ground_truth", seed=1)
    assert (settings["processes"], settings["vllm_server_gpus"], settings["vllm"]["mode"]) == (4, 4, "server")
    # The launcher starts the 4 training processes; the server is relaunch's (8 GPUs for the job as before).
    assert launch.launcher(settings) == (
        f"accelerate launch --config_file {launch.ACCELERATE_CONFIGS / 'fsdp2.yaml'} --num_processes 4 "
        "--num_machines 1 --main_process_port 0 --mixed_precision bf16")
    assert config["train"]["gpus_per_run"] == 8
    # Colocate runs keep their settings as they were (no new key, so no rerun of finished jobs).
    colocate = cfg.train_settings(cfg.load(REPO / "config/paper.yaml"), "ground_truth", seed=1)
    assert colocate["processes"] == 8 and "vllm_server_gpus" not in colocate
    # One training process with a server still needs a launcher: relaunch is what starts the server.
    one = {**settings, "processes": 1, "engine": "none"}
    assert launch.launcher(one) == ("accelerate launch --num_processes 1 --num_machines 1 --main_process_port 0 "
                                    "--mixed_precision bf16")


@pytest.mark.parametrize("override,message", [
    ("train: {vllm_server_gpus: 8, defaults: {vllm: {mode: server, gpu_memory_utilization: 0.9, sleep_mode: false}}}",
     "config key 'train.vllm_server_gpus': 8 server GPUs leave none of train.gpus_per_run = 8 to train"),
    ("train: {defaults: {vllm: {mode: server, gpu_memory_utilization: 0.9, sleep_mode: false}}}",
     "config key 'train.defaults.vllm.mode': server mode needs GPUs for the server; set train.vllm_server_gpus"),
    ("train: {vllm_server_gpus: 4, defaults: {gradient_accumulation_steps: 64}}",
     "config key 'train.defaults.vllm.mode': colocate, but train.vllm_server_gpus reserves 4 GPUs"),
    (SERVER + "    use_vllm: false\n",
     "config key 'train.defaults.vllm.mode': server mode serves vLLM rollouts on GPUs; variant 'ground_truth' has "
     "use_vllm False"),
    ("train: {vllm_server_gpus: 4, defaults: {gradient_accumulation_steps: 64, vllm: {mode: server, "
     "gpu_memory_utilization: 0.9, sleep_mode: true}}}",
     "config key 'train.defaults.vllm.sleep_mode': sleep mode frees a colocated engine's memory"),
    ("train: {vllm_server_gpus: 4, defaults: {gradient_accumulation_steps: 64, vllm: {mode: server, "
     "gpu_memory_utilization: 0.9, sleep_mode: false}}, variant_settings: {nsr: {estimator: nsr, vllm: "
     "{mode: colocate}}}}",
     "config key 'train.variant_settings.nsr.vllm.mode': colocate, but train.vllm_server_gpus reserves 4 GPUs"),
    # 2048 completions / (2 x 32 micro-batches) = 32 per micro-step: 7 training processes do not divide it.
    ("train: {vllm_server_gpus: 1, defaults: {vllm: {mode: server, gpu_memory_utilization: 0.9, sleep_mode: false}}}",
     "config key 'train.gpus_per_run': 7 training processes (gpus_per_run 8 - vllm_server_gpus 1) do not split"),
    # a job's server is started with one run's seed: several seeds per job would share it
    (SERVER + "seeds: [1, 2]\nbatch_seeds: true\n",
     "config key 'batch_seeds': a job's vLLM server serves one run's seed"),
    ("train: {defaults: {vllm: {mode: remote, gpu_memory_utilization: 0.9, sleep_mode: false}}}",
     "config key 'train.defaults.vllm.mode': 'remote' is not one of ['colocate', 'server']"),
])
def test_contradictory_server_settings_name_their_key(tmp_path, override, message):
    assert message in errors(paper(tmp_path, override))


def test_a_defaults_level_problem_is_reported_once(tmp_path):
    text = errors(paper(tmp_path, "train: {vllm_server_gpus: 4, defaults: {gradient_accumulation_steps: 64}}"))
    assert text.count("reserves 4 GPUs") == 1


def test_server_on_cpu_is_rejected(repo, tmp_path):
    override = "train: {vllm_server_gpus: 1, gpus_per_run: 2, defaults: {vllm: {mode: server}}}"
    assert "server mode serves vLLM rollouts on GPUs; variant 'ground_truth' has use_vllm False and device 'cpu'" \
        in errors(cfg.merge(cfg.load(repo / "config/config.yaml"), yaml.safe_load(override)))
    with pytest.raises(ValueError, match="server mode needs GPUs"):
        launch.launcher({"device": "cpu", "use_vllm": True, "vllm": {"mode": "server"}})


# -- mtarl plan -------------------------------------------------------------------------------------------------------

QWEN = plan.KNOWN_SHAPES["Qwen/Qwen2.5-7B"]
LLAMA = plan.KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"]


@pytest.mark.parametrize("name,shape,P,L,h,kv,I,V", [
    ("qwen", QWEN, 7_615_616_512, 28, 3584, 512, 18944, 152064),
    ("llama", LLAMA, 8_030_261_248, 32, 4096, 1024, 14336, 128256),
])
def test_server_mode_memory_by_hand(tmp_path, name, shape, P, L, h, kv, I, V):
    config = cfg.validate(paper(tmp_path))
    settings = cfg.train_settings(config, "ground_truth", seed=1)
    # 2048 completions over 2 optimizer steps x 64 micro-batches x 4 training processes.
    assert plan.micro_batch(settings) == 2048 // (2 * 64 * 4) == 4
    tokens = 4 * (2048 + 8192)
    memory = plan.train_memory(shape, settings, 80)
    expected = {
        "states": P * 16 / 4 / 1e9,  # sharded over the 4 training processes only
        "gathered_params": (2 * shape.layer_parameters() + V * h) * 2 / 1e9,
        "checkpointed_inputs": tokens * L * h * 2 / 1e9,
        "recompute_working_set": tokens * (7 * h + 2 * kv + 4 * I) * 4 / 1e9,
        "logprob_tile": 4096 * 32768 * 4 * 2 / 1e9,
        "overhead": 4.0,
        "vllm": 0.0,  # no engine on a training GPU
    }
    for part, value in expected.items():
        assert memory[part] == pytest.approx(value), part
    assert memory["peak"] == pytest.approx(sum(expected.values()))
    rows, problems = plan.plan(config)
    assert problems == []
    train = next(r for r in rows if r["model"] == name and r["job"] == "train ground_truth" and not r.get("server"))
    server = next(r for r in rows if r["model"] == name and r["job"] == "train ground_truth" and r.get("server"))
    assert (train["gpus"], train["processes"], train["server_gpus"]) == (8, 4, 4)
    # The server: tensor parallelism 4, 0.9 x 80 = 72 GB per GPU, a quarter of the bf16 weights on each, and KV
    # cache at 2 L kv_heads d 2 / min(4, kv_heads) bytes per token per GPU.
    free = 72e9 - P * 2 / 4 - 2e9
    per_token = 2 * L * (kv // 128) * 128 * 2 / min(4, kv // 128)
    assert (server["gpus"], server["tensor_parallel"], server["peak"]) == (4, 4, pytest.approx(72.0))
    assert server["vllm_kv_tokens"] == int(free // per_token)


def test_server_mode_numbers_in_gigabytes(tmp_path):
    memory = plan.train_memory(QWEN, cfg.train_settings(cfg.validate(paper(tmp_path)), "ground_truth", 1), 80)
    # 7.6157e9 x 16 / 4 = 30.46 GB; the rest as with 8 processes at micro-batch 4 (tests/test_plan.py), no vLLM share.
    assert round(memory["states"], 2) == 30.46
    assert round(memory["peak"], 1) == 62.5
    # Qwen's server: (72e9 - 15.23e9 / 4 - 2e9) / (57344 / 4) = 4,617,200 tokens, 450 sequences of 10240 at once.
    assert plan.vllm_kv_tokens(QWEN, 72.0, 4) == int((72e9 - 7_615_616_512 * 2 / 4 - 2e9) // (57_344 / 4)) \
        == 4_617_200


def test_plan_output_and_tensor_parallel_rule(tmp_path):
    import subprocess

    path = tmp_path / "server.yaml"
    path.write_text(SERVER)
    result = subprocess.run([sys.executable, "-m", "mtarl.cli", "plan", "--config", str(REPO / "config/paper.yaml"),
                             "--config", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "8 GPUs, 4 processes (fsdp2) + a vLLM server on 4, micro-batch 4: peak 62.5 GB/GPU" in result.stdout
    assert "4 GPUs, 1 engine (tensor parallel 4): vLLM reserves 72.0 GB/GPU" in result.stdout
    assert "fits: every job within 80 GB per GPU; tightest llama train ground_truth at 64.3 GB" in result.stdout
    # Tensor parallelism 2 divides Qwen's 28 heads and 4 KV heads, 8 does not; 8 suits Llama's 32 and 8.
    row = {"model": "qwen", "job": "train ground_truth", "tensor_parallel": 8, "vllm_kv_tokens": 10**6,
           "sequence": 10240, "peak": 72.0}
    assert "must divide the model's 28 attention heads" in plan.server_problems(row, QWEN)[0]
    assert plan.server_problems({**row, "tensor_parallel": 2}, QWEN) == []
    assert plan.server_problems({**row, "tensor_parallel": 8}, LLAMA) == []
    short = {**row, "tensor_parallel": 4, "vllm_kv_tokens": 10}
    assert "less than one 10240-token sequence" in plan.server_problems(short, QWEN)[0]


# -- commands, devices and ports ----------------------------------------------------------------------------------

SETTINGS = {"device": "cuda", "use_vllm": True, "seed": 3, "processes": 2, "engine": "fsdp2", "vllm_server_gpus": 2,
            "vllm": {"mode": "server", "gpu_memory_utilization": 0.9}, "max_prompt_tokens": 28,
            "max_completion_length": 100, "mixed_precision": "bf16"}


def test_server_command_is_what_trl_vllm_serve_accepts():
    from trl.scripts.vllm_serve import build_command, make_parser

    command = launch.server_command(SETTINGS, "/models/qwen", 43210)
    assert command[:2] == ["trl", "vllm-serve"]
    # TRL 1.16's own parser: every flag is one of its ScriptArguments, except --seed, which it forwards to vllm serve.
    script_args, extra = make_parser().parse_args_and_config(args=command[2:], return_remaining_strings=True)
    assert (script_args.model, script_args.host, script_args.port) == ("/models/qwen", "127.0.0.1", 43210)
    assert (script_args.tensor_parallel_size, script_args.data_parallel_size) == (2, 1)
    assert (script_args.gpu_memory_utilization, script_args.max_model_len) == (0.9, 128)
    assert extra == ["--seed", str(launch.vllm_seed(3, 0))]
    served = build_command(script_args, extra)
    assert served[served.index("serve") + 1] == "/models/qwen"
    assert served[-2:] == ["--seed", str(launch.vllm_seed(3, 0))]
    assert "--weight-transfer-config" in served, "TRL adds the NCCL weight sync the trainer needs"
    assert launch.vllm_seeds(SETTINGS, 2) == [launch.vllm_seed(3, 0)]
    assert launch.vllm_seeds({**SETTINGS, "vllm": {"mode": "colocate"}}, 2) == [launch.vllm_seed(3, 0),
                                                                                launch.vllm_seed(3, 1)]


def test_devices_split_between_training_and_server():
    assert launch.split_devices(SETTINGS, "4,5,6,7") == (["4", "5"], ["6", "7"])
    assert launch.split_devices(SETTINGS, None) == (["0", "1"], ["2", "3"])
    with pytest.raises(RuntimeError, match="need 4 GPUs, but CUDA_VISIBLE_DEVICES lists 3"):
        launch.split_devices(SETTINGS, "0,1,2")


def test_ports_are_distinct_free_and_passed_explicitly(monkeypatch):
    ports = launch.free_ports()
    assert len({ports.master, ports.server, ports.group}) == 3
    for port in (ports.master, ports.server, ports.group):  # free: this process can bind each
        with socket.socket() as sock:
            sock.bind((launch.SERVER_HOST, port))
    command = launch.with_master_port(launch.rank_command(launch.launcher(SETTINGS), ["train", "--out", "o"]), 4242)
    assert command[command.index("--main_process_port") + 1] == "4242"
    assert command[command.index("--num_processes") + 1] == "2", "one training process per non-server GPU"
    monkeypatch.setenv(launch.SERVER_PORT_ENV, "1234")
    monkeypatch.setenv(launch.GROUP_PORT_ENV, "5678")
    assert launch.vllm_fields(SETTINGS) == {"vllm_mode": "server", "vllm_server_host": "127.0.0.1",
                                            "vllm_server_port": 1234, "vllm_group_port": 5678,
                                            "vllm_server_timeout": launch.CLIENT_TIMEOUT_SECONDS}
    assert launch.vllm_fields({**SETTINGS, "vllm": {"mode": "colocate"}}) == {"vllm_mode": "colocate"}
    monkeypatch.delenv(launch.GROUP_PORT_ENV)
    with pytest.raises(RuntimeError, match="run it with --launch"):
        launch.vllm_fields(SETTINGS)


def test_grpo_config_takes_the_server_ports(tmp_path, monkeypatch):
    from mtarl import train

    base = cfg.train_settings(cfg.load(REPO / "config/config.yaml"), "ground_truth", seed=1)
    monkeypatch.setenv(launch.SERVER_PORT_ENV, "1234")
    monkeypatch.setenv(launch.GROUP_PORT_ENV, "5678")
    args = train.grpo_config({**base, "use_vllm": True, "vllm": {"mode": "server"}}, tmp_path)
    assert (args.vllm_mode, args.vllm_server_host, args.vllm_server_port, args.vllm_group_port) == \
        ("server", "127.0.0.1", 1234, 5678)
    assert train.grpo_config({**base, "use_vllm": True}, tmp_path).vllm_mode == "colocate"


# -- lifecycle, with a fake server started for real -----------------------------------------------------------------

FAKE_TRL = """\
#!{python}
# A stand-in for `trl vllm-serve`: records how it was started, then answers GET /health (after a second, as a real
# server takes a while) until it is stopped.
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
with open(os.environ["FAKE_RECORD"], "w") as fh:
    json.dump({{"argv": args, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}}, fh)
if os.environ.get("FAKE_SERVER_EXIT"):
    sys.exit(int(os.environ["FAKE_SERVER_EXIT"]))
time.sleep(1)


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

FAKE_LAUNCHER = """\
# A stand-in for `accelerate launch`: records its command line and environment, asks the server's /health (it must
# be up while training runs), and exits with FAKE_EXIT.
import json, os, sys, urllib.request

port, status = os.environ.get("MTARL_VLLM_SERVER_PORT"), None
if port:  # server mode
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        status = response.status
record = {"argv": sys.argv[1:], "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "server_port": port,
          "group_port": os.environ.get("MTARL_VLLM_GROUP_PORT"), "health": status}
with open(os.environ["FAKE_LAUNCH_RECORD"], "w") as fh:
    json.dump(record, fh)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    trl = bin_dir / "trl"
    trl.write_text(FAKE_TRL.format(python=sys.executable))
    trl.chmod(0o755)
    launcher = tmp_path / "fake_launch.py"
    launcher.write_text(FAKE_LAUNCHER)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.setenv("FAKE_RECORD", str(tmp_path / "server.json"))
    monkeypatch.setenv("FAKE_LAUNCH_RECORD", str(tmp_path / "launch.json"))
    prefix = f"{sys.executable} {launcher} --num_processes 2 --main_process_port 0"
    argv = ["train", "--settings", json.dumps(SETTINGS), "--model", "/models/qwen", "--launch", prefix,
            "--out", "o"]
    return prefix, argv, tmp_path


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_relaunch_serves_while_training_runs_then_stops_the_server(fakes):
    prefix, argv, tmp = fakes
    launch.relaunch(prefix, argv)
    server = json.loads((tmp / "server.json").read_text())
    trained = json.loads((tmp / "launch.json").read_text())
    assert server["cuda"] == "6,7" and trained["cuda"] == "4,5", "the last 2 GPUs serve, the first 2 train"
    assert trained["health"] == 200, "the server answered while training ran"
    port = int(server["argv"][server["argv"].index("--port") + 1])
    master = int(trained["argv"][trained["argv"].index("--main_process_port") + 1])
    assert int(trained["server_port"]) == port
    assert len({port, master, int(trained["group_port"])}) == 3 and 0 not in (port, master)
    rest = trained["argv"][trained["argv"].index("-m"):]
    assert rest == ["-m", "mtarl.cli", "train", "--settings", json.dumps(SETTINGS), "--model", "/models/qwen",
                    "--out", "o"], "every process runs the same mtarl command, --launch removed"
    assert server["argv"][server["argv"].index("--seed") + 1] == str(launch.vllm_seed(3, 0))
    assert gone(server["pid"]), "the server is stopped when training ends"
    assert not launch.healthy(f"http://127.0.0.1:{port}/health")


def test_the_server_takes_the_seed_of_the_jobs_run(fakes):
    """A train job's settings give its seeds as a list (one in server mode): the server gets that run's seed."""
    prefix, argv, tmp = fakes
    settings = {k: v for k, v in SETTINGS.items() if k != "seed"}
    argv[argv.index("--settings") + 1] = json.dumps({**settings, "seeds": [5]})
    launch.relaunch(prefix, argv)
    server = json.loads((tmp / "server.json").read_text())
    assert server["argv"][server["argv"].index("--seed") + 1] == str(launch.vllm_seed(5, 0))


def test_a_failed_training_stops_the_server_and_passes_its_status_on(fakes, monkeypatch):
    prefix, argv, tmp = fakes
    monkeypatch.setenv("FAKE_EXIT", "3")
    with pytest.raises(SystemExit) as exit_:
        launch.relaunch(prefix, argv)
    assert exit_.value.code == 3
    assert gone(json.loads((tmp / "server.json").read_text())["pid"])


def test_a_server_that_dies_fails_the_run_before_training(fakes, monkeypatch):
    prefix, argv, tmp = fakes
    monkeypatch.setenv("FAKE_SERVER_EXIT", "7")
    with pytest.raises(RuntimeError, match="the vLLM server exited with status 7 before answering"):
        launch.relaunch(prefix, argv)
    assert not (tmp / "launch.json").exists(), "training never started"


def test_colocate_relaunch_starts_no_server(fakes, monkeypatch):
    prefix, argv, tmp = fakes
    colocate = json.dumps({**SETTINGS, "vllm": {"mode": "colocate"}})
    launch.relaunch(prefix, [colocate if a == json.dumps(SETTINGS) else a for a in argv])
    trained = json.loads((tmp / "launch.json").read_text())
    assert trained["cuda"] == "4,5,6,7" and trained["server_port"] is None
    assert trained["argv"][trained["argv"].index("--main_process_port") + 1] != "0"
    assert not (tmp / "server.json").exists(), "no server in colocate mode"
