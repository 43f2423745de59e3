"""The command line's contract: defaults come from the config dataclasses, one device vocabulary, the project's
errors become messages (exit 2) and anything else a traceback (exit 1), and the offline random teacher runs."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from click.testing import CliRunner

import cli as cli_module
from cli import cli
from data.device import check_device, resolve_device
from data.errors import UserError
from teacher_cache import TeacherCache

# Every command whose options fill a config, and that config (a command's options may fill the model too).
COMMAND_CONFIGS = {
    "precompute": [cli_module.PrecomputeConfig], "random-teacher": [cli_module.RandomTeacherConfig],
    "train": [cli_module.TrainConfig, cli_module.ModelConfig], "evaluate": [cli_module.EvaluateConfig],
    "predict": [cli_module.PredictConfig], "synth": [cli_module.SynthConfig],
    "ablate": [cli_module.AblateConfig, cli_module.ModelConfig], "split": [cli_module.SplitConfig],
    "negatives": [cli_module.NegativesConfig], "structure-cache": [cli_module.StructureCacheConfig],
    "evaluate-maps": [cli_module.EvaluateMapsConfig], "screen": [cli_module.ScreenConfig],
    "demo": [cli_module.DemoConfig],
}
FORMATTED = {("precompute", "attention_layers"): "-1", ("precompute", "shard"): "0/1",
             ("precompute", "tokens_per_batch"): "4096"}


def _as_option(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return value


@pytest.mark.parametrize("name", sorted(COMMAND_CONFIGS))
def test_every_option_default_is_its_config_fields_default(name):
    command = cli.commands[name]
    checked = 0
    for param in command.params:
        for config in COMMAND_CONFIGS[name]:
            fields = {f.name: f for f in dataclasses.fields(config)}
            if param.name not in fields or param.name == "top":  # screen's --top: 10000 unless --min-prob
                continue
            if param.required or param.name in ("pairs", "fasta", "cache", "checkpoint", "model", "out") \
                    and cli_module.field_default(config, param.name) in ("", None):
                break  # an input or output path: no default to compare
            expected = FORMATTED.get((name, param.name), _as_option(cli_module.field_default(config, param.name)))
            default = param.default
            if getattr(param, "is_flag", False) and not isinstance(default, bool):
                default = False  # a flag without a stated default is off
            assert default == expected, (name, param.name, default, expected)
            checked += 1
            break
    assert checked >= 1


def test_ablation_settings_are_trains():
    ablate = {f.name: f for f in dataclasses.fields(cli_module.AblateConfig)}
    for field in dataclasses.fields(cli_module.TrainConfig):
        if field.name != "n_train":
            assert cli_module.field_default(cli_module.AblateConfig, field.name) == \
                cli_module.field_default(cli_module.TrainConfig, field.name), field.name
            assert field.name in ablate
    assert "head" not in {f.name for f in dataclasses.fields(cli_module.TrainConfig)}  # the head lives in the model


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_vocabulary_accepts(name):
    assert check_device(name) == name


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:", "cuda:x", "mps", ""])
def test_device_vocabulary_refuses_with_the_choices(name):
    with pytest.raises(UserError, match="auto, cpu, cuda or cuda:N"):
        check_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_resolver_refuses_cuda_where_there_is_none_and_auto_falls_back():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda:1")


def test_every_command_refuses_a_bad_device_the_same_way(tmp_path):
    result = CliRunner().invoke(cli, ["screen", "--checkpoint", str(tmp_path / "x.pt"), "--fasta",
                                      str(tmp_path / "x.fa"), "--out", str(tmp_path / "o.tsv"), "--device", "gpu"])
    assert result.exit_code == 2 and "auto, cpu, cuda or cuda:N" in result.output
    assert "internal error" not in result.output


def test_a_bug_shows_its_traceback_and_exits_1(monkeypatch, tmp_path):
    def broken(config):
        raise KeyError("not a user error")

    monkeypatch.setattr("teacher_cache.teachers.esm_runner.write_random_teacher", broken)
    result = CliRunner().invoke(cli, ["random-teacher", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyError)  # re-raised: standalone mode prints its traceback
    assert "internal error" in result.output


def test_an_os_error_names_the_path_and_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["cache", "info", str(tmp_path / "missing.h5")])
    assert result.exit_code == 2 and "missing.h5" in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "protein-loftr" in result.output


def test_random_teacher_writes_fair_esm_files_that_precompute_runs(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["random-teacher", "--arch", "t6", "--out", str(tmp_path / "esm")])
    assert result.exit_code == 0, result.output
    model = tmp_path / "esm" / "esm2_t6_random.pt"
    assert model.exists() and (tmp_path / "esm" / "esm2_t6_random-contact-regression.pt").exists()
    again = runner.invoke(cli, ["random-teacher", "--arch", "t6", "--out", str(tmp_path / "esm")])
    assert again.exit_code == 2 and "--overwrite" in again.output
    (tmp_path / "s.fasta").write_text(">a\nMKTAYIAKQRQISFVK\n>b\nGLLVVKQEWWTRSS\n")
    (tmp_path / "p.tsv").write_text("a\tb\t1\n")
    result = runner.invoke(cli, ["precompute", "--pairs", str(tmp_path / "p.tsv"), "--fasta", str(tmp_path / "s.fasta"),
                                 "--model", str(model), "--out", str(tmp_path / "c.h5"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        assert cache.random_weights and cache.n_pairs == 1 and cache.info()["model"].startswith("esm2_t6_random")
