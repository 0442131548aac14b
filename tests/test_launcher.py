"""llmobs run -- COMMAND: llmobs started in the program without a line of its code, transformers
instrumented only once the program imports it, bad configuration refused before the program runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmobs._post_import import when_imported
from tests.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).parents[1]


def launch(tmp_path: Path, code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m llmobs._cli run -- python script.py ARGS`` with a clean llmobs environment."""
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    full_env.update({"PYTHONPATH": str(ROOT), "LLMOBS_GPU": "false", "LLMOBS_HOST": "false", **env})
    command = [sys.executable, "-m", "llmobs._cli", "run", "--", sys.executable, str(script), *args]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_the_program_runs_with_llmobs_started_and_its_arguments_and_exit_code(tmp_path: Path) -> None:
    shadowed = tmp_path / "theirs"
    shadowed.mkdir()
    (shadowed / "sitecustomize.py").write_text("import sys\nsys.their_site = True\n")
    code = """
        import sys
        from llmobs import _lifecycle
        print(sys.argv[1:], _lifecycle.state.settings is not None, "transformers" in sys.modules, sys.their_site)
        sys.exit(3)
    """
    result = launch(
        tmp_path, code, "a", "--b", PYTHONPATH=f"{ROOT}{os.pathsep}{shadowed}", OTEL_METRICS_EXPORTER="none"
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.split("\n")[0] == "['a', '--b'] True False True"


def test_bad_configuration_stops_before_the_program(tmp_path: Path) -> None:
    result = launch(tmp_path, "print('ran')", LLMOBS_BUCKETS="gen_ai.server.request.duration=2,1")
    assert result.returncode == 2 and result.stdout == ""
    assert "LLMOBS_BUCKETS: gen_ai.server.request.duration boundaries must increase" in result.stderr


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "llmobs._cli", "run"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "name the command to run" in result.stderr


def test_a_transformers_program_is_measured_without_its_code_knowing(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    code = """
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, eos_token_id=None, pad_token_id=0)
        model = GPT2LMHeadModel(config)
        output = model.generate(torch.tensor([[1, 2, 3, 4]]), max_new_tokens=6, min_new_tokens=6, do_sample=False)
        print(output.shape[1] - 4)
    """
    with OTLPReceiver() as receiver:
        result = launch(tmp_path, code, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint, OTEL_TRACES_EXPORTER="none")
        assert result.returncode == 0, result.stderr
        want = {"gen_ai.request.model": "GPT2LMHeadModel", "gen_ai.operation.name": "text_completion"}
        tokens = {
            p.attributes["gen_ai.token.type"]: p.sum for p in receiver.latest("llmobs.inference.token.usage", want)
        }
    assert result.stdout.strip() == "6"
    assert tokens == {"input": 4, "output": 6}


def test_the_import_hook_fires_once_after_the_import_and_a_failing_callback_breaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "llmobs_hooked_module.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[int] = []

    def callback() -> None:
        seen.append(sys.modules["llmobs_hooked_module"].VALUE)
        raise RuntimeError("instrumentation broke")

    before = list(sys.meta_path)
    when_imported("llmobs_hooked_module", callback)
    import llmobs_hooked_module

    assert llmobs_hooked_module.VALUE == 42 and seen == [42]
    assert sys.meta_path == before  # the finder left
    assert [r.getMessage() for r in caplog.records] == [
        "llmobs: internal error in after importing llmobs_hooked_module; telemetry for it is skipped"
    ]
    when_imported("json", lambda: seen.append(0))  # imported already: now
    assert seen == [42, 0]
    monkeypatch.delitem(sys.modules, "llmobs_hooked_module")
