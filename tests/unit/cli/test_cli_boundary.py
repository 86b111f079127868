"""The CLI's one error boundary: usage, recipe and OS errors end in a short message, never a traceback.

Every case calls ``main`` in-process and checks the exit code (2 for usage and recipe errors, 1 for
the rest), that no traceback is printed, and that the message names the verb, flag, path or key.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tunelab.cli.common import show_result
from tunelab.cli.main import main
from tunelab.config.load import apply_overrides


def _recipe(tmp_path: Path, name: str = "recipe.yaml", out: Path | None = None, **extra) -> Path:
    data = tmp_path / "ok.jsonl"
    data.write_text('{"text": "fine film", "label": "a"}\n{"text": "dull film", "label": "b"}\n')
    raw = {
        "run": {"name": "r", "output_dir": str(out or tmp_path / "runs")},
        "data": {"sources": [{"path": str(data)}]},
        **extra,
    }
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def _fails(argv, capsys, code: int, *needles: str) -> str:
    assert main([str(a) for a in argv]) == code
    captured = capsys.readouterr()
    err = captured.err.replace("\n", " ")
    assert "Traceback" not in err + captured.out
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# -- usage errors: exit code 2 ----------------------------------------------------------------------


def test_unknown_verb_is_named_with_a_suggestion(capsys):
    _fails(["dta", "x"], capsys, 2, "No such command 'dta'", "'data'", "tunelab --help")


def test_a_verb_without_its_recipe_says_what_is_missing(capsys):
    _fails(["data"], capsys, 2, "Missing argument 'recipe'", "tunelab data")


def test_bare_tunelab_lists_the_verbs(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert "Traceback" not in both
    assert "validate" in both and "run" in both and "no command given" in captured.err


def test_an_unknown_flag_is_named(tmp_path, capsys):
    _fails(["--bogus"], capsys, 2, "No such option: --bogus")
    _fails(["data", "--bogus", _recipe(tmp_path)], capsys, 2, "No such option: --bogus", "tunelab data")


def test_extra_arguments_are_named(tmp_path, capsys):
    _fails(["init", tmp_path / "a.yaml", "b", "c"], capsys, 2, "(b c)", "tunelab init")


# -- --debug and TUNELAB_DEBUG ----------------------------------------------------------------------


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TUNELAB_DEBUG", raising=False)
    missing = tmp_path / "nope.yaml"
    assert main(["--debug", "validate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "nope.yaml" in err
    assert "TUNELAB_DEBUG" not in os.environ, "--debug holds for one command only"
    _fails(["validate", missing], capsys, 2, "nope.yaml")

    monkeypatch.setenv("TUNELAB_DEBUG", "1")
    assert main(["validate", str(missing)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_bug_still_raises(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("tunelab.config.load_recipe", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["validate", str(_recipe(tmp_path))])


# -- nothing tunelab prints is read as rich markup -----------------------------------------------


def test_brackets_in_a_missing_recipe_path_are_kept(tmp_path, capsys):
    path = tmp_path / "a[b]" / "c[/x]" / "r[bold].yaml"
    _fails(["validate", path], capsys, 2, str(path), "file not found")


def test_brackets_in_a_missing_data_path_are_kept(tmp_path, capsys):
    missing = tmp_path / "d[x]" / "no[/b].jsonl"
    recipe = _recipe(tmp_path, data={"sources": [{"path": str(missing)}]})
    _fails(["data", recipe], capsys, 1, str(missing), "not found")


def test_validate_success_line_keeps_brackets(tmp_path, capsys):
    out = tmp_path / "runs[/b]" / "x[red]"
    recipe = _recipe(tmp_path, name="in[b]/recipe:smile:.yaml", out=out, model={"name": "org/offline-model"})
    assert main(["validate", str(recipe)]) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    assert f"{recipe}: valid" in err and str(out / "r") in err


def test_init_prints_bracketed_paths_as_written(tmp_path, capsys):
    target = tmp_path / "br[x]" / "a:smile:[/b].yaml"
    assert main(["init", str(target)]) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    assert target.is_file() and f"wrote {target}" in err and f"tunelab run {target}" in err


def test_show_result_prints_stage_names_and_intervals_plainly(capsys):
    show_result(
        SimpleNamespace(
            skipped=False, stage="echo[/b]", metrics={"acc": {"value": 0.5, "low": 0.1, "high": 0.9}}
        )
    )
    show_result(SimpleNamespace(skipped=True, stage="x[red]", metrics={}))
    err = capsys.readouterr().err
    assert "echo[/b]: done acc=0.5000 [0.100, 0.900]" in err and "x[red]: up to date" in err


# -- OS errors that are the user's ------------------------------------------------------------------


def test_output_dir_under_a_regular_file(tmp_path, capsys):
    blocker = tmp_path / "afile[1]"
    blocker.write_text("")
    recipe = _recipe(tmp_path, out=blocker / "runs")
    _fails(["data", recipe], capsys, 1, str(blocker / "runs" / "r"), "not a folder", "run.output_dir")


def test_output_dir_is_a_regular_file(tmp_path, capsys):
    blocker = tmp_path / "runs"
    blocker.write_text("")
    recipe = _recipe(tmp_path, out=tmp_path)
    recipe.write_text(recipe.read_text().replace("name: r", "name: runs"))
    _fails(["data", recipe], capsys, 1, str(blocker), "a folder is needed", "run.output_dir")


def test_permission_denied_on_the_run_directory(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if locked in (self, *self.parents):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)  # root ignores chmod, so the OS's refusal is simulated
    recipe = _recipe(tmp_path, out=locked)
    _fails(["data", recipe], capsys, 1, str(locked / "r"), "permission denied", "run.output_dir")


def test_init_onto_a_folder(tmp_path, capsys):
    folder = tmp_path / "conf[x]"
    folder.mkdir()
    _fails(["init", folder], capsys, 1, str(folder), "is a folder", str(folder / "recipe.yaml"))
    _fails(["init", folder, "--overwrite"], capsys, 1, str(folder), "is a folder")


def test_init_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "plain"
    blocker.write_text("")
    _fails(["init", blocker / "recipe.yaml"], capsys, 1, str(blocker), "a folder is needed")


def test_init_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "r.yaml"
    target.write_text("x: 1\n")
    _fails(["init", target], capsys, 1, str(target), "--overwrite")


# -- overrides ---------------------------------------------------------------------------------------


def test_an_override_that_is_not_yaml_names_the_key(tmp_path, capsys):
    _fails(
        ["validate", _recipe(tmp_path), "train.epochs=[1"],
        capsys,
        2,
        "override train.epochs",
        "not valid YAML",
    )


def test_apply_overrides_reports_bad_values_and_keys():
    raw: dict = {}
    bad = apply_overrides(raw, ["train.epochs=[1", "a..b=1", "novalue", "train.batch_size=4"])
    assert len(bad) == 3
    assert "train.epochs" in bad[0] and "[1" in bad[0]
    assert "a..b" in bad[1] and "novalue" in bad[2]
    assert raw == {"train": {"batch_size": 4}}


# -- a failed command leaves no empty run directory -----------------------------------------------


def test_a_failed_stage_removes_the_run_directory_it_created(tmp_path, capsys):
    recipe = _recipe(tmp_path, out=tmp_path / "runs" / "deeper")
    _fails(["train", recipe], capsys, 1, "needs the 'data' stage", "tunelab data")
    assert not (tmp_path / "runs").exists(), "the run folder and the parents it created are gone"


def test_a_run_directory_that_existed_is_kept(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    (tmp_path / "runs" / "r").mkdir(parents=True)
    _fails(["train", recipe], capsys, 1, "needs the 'data' stage")
    assert (tmp_path / "runs" / "r").is_dir()  # the user's folder stays
    assert list((tmp_path / "runs" / "r").iterdir()) == []  # and the failed stage wrote nothing in it


# -- models that cannot be loaded (the data stage is cheap; train fails while loading) -----------


@pytest.fixture
def prepared(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    assert main(["data", str(recipe)]) == 0
    capsys.readouterr()
    return recipe


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("smollm3", ["'smollm3'", "not a bundled alias", "'smollm2'", "tunelab models"]),
        ("org/not-cached", ["model.name 'org/not-cached'", "offline", "tunelab models"]),
        ("./no-such-folder", ["no-such-folder", "does not exist"]),
    ],
)
def test_a_model_that_cannot_be_found(prepared, capsys, monkeypatch, name, needles):
    monkeypatch.chdir(prepared.parent)
    _fails(["train", prepared, f"model.name={name}"], capsys, 1, *needles)
    assert (prepared.parent / "runs" / "r" / "data").is_dir(), "the prepared data stays"


def test_a_folder_with_only_pickle_weights(prepared, tiny_bert, tmp_path, capsys):
    folder = tmp_path / "pickled[1]"
    shutil.copytree(tiny_bert, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    _fails(["train", prepared, f"model.name={folder}"], capsys, 1, str(folder), "model.allow_pickle: true")
