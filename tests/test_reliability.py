"""No traceback on any path: bad output locations, bad flag values, bad prompt files, huge
request counts and small config mistakes each give one line and exit 2, before any model is
loaded and without writing anything; SIGTERM ends a run like Ctrl-C (exit 143)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from llenergymeasure.cli.main import main
from llenergymeasure.config.budget import check_request_memory, request_bytes
from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.config.study import load_study_config
from llenergymeasure.errors import ConfigError, LlemError
from llenergymeasure.measure.prompts import load_prompt_ids
from llenergymeasure.results.collection import LoadedResult, ResultSet
from llenergymeasure.signals import Terminated, exit_status, install_sigterm_handler
from tests.cli_helpers import ROOT, run_llem, source_env
from tests.factories import experiment_result


def llem(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point in this process; returns (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build an engine fails the test: the checks must come first."""

    def refuse(*_: object) -> None:
        raise AssertionError("the model was about to be loaded")

    monkeypatch.setattr("llenergymeasure.measure.experiment.create_engine", refuse)


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """A directory holding one valid result."""
    from llenergymeasure.results.io import save_result

    directory = tmp_path / "results"
    save_result(experiment_result(), directory / "exp1" / "result.json")
    return directory


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---- 3. output locations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda t: ["run", "-o", str(t / "afile")], "is a file, not a directory"),
        (lambda t: ["run", "-o", str(t / "afile" / "sub")], "is a file"),
        (lambda t: ["study", str(t / "s.yaml"), "-o", str(t / "afile")], "is a file"),
        (lambda t: ["study", str(t / "s.yaml"), "--dry-run", "-o", str(t / "afile")], "is a file"),
        (lambda t: ["run", str(t / "nul.yaml")], "holds a NUL byte"),
        (lambda t: ["study", str(t / "nulname.yaml"), "--dry-run"], "name: name must be a plain"),
        (lambda t: ["results", "export", "RESULTS", "-o", str(t)], "is a directory"),
        (lambda t: ["results", "export", "RESULTS", "-o", str(t / "no" / "x.csv")], "not exist"),
        (lambda t: ["results", "export", "RESULTS", "-o", str(t / "afile" / "x.csv")], "is a file"),
        (lambda t: ["report", "RESULTS", "-o", str(t)], "is a directory"),
        (lambda t: ["report", "RESULTS", "-o", str(t / "no" / "r.html")], "does not exist"),
        (lambda t: ["schema", "-o", str(t)], "is a directory"),
        (lambda t: ["schema", "-o", str(t / "afile" / "s.json")], "is a file"),
    ],
)
def test_bad_output_location_one_line_nothing_written(
    tmp_path: Path,
    results_dir: Path,
    capsys: pytest.CaptureFixture[str],
    no_model_load: None,
    make_args,  # type: ignore[no-untyped-def]
    expected: str,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("keep me")
    (work / "s.yaml").write_text("name: s\nbase: {baseline_sec: 0}\n")
    (work / "nul.yaml").write_text('output_dir: "out\\0put"\n')
    (work / "nulname.yaml").write_text('name: "a\\0b"\n')
    before = _listing(work)
    args = [str(results_dir) if a == "RESULTS" else a for a in make_args(work)]
    code, _, err = llem(capsys, *args)
    assert code == 2, err
    line = one_error_line(err)
    assert expected in line
    assert _listing(work) == before  # nothing created
    assert (work / "afile").read_text() == "keep me"


def test_unwritable_output_checked_as_a_real_unprivileged_user(tmp_path: Path) -> None:
    """As root everything is writable, so the check runs as `nobody` in a plain interpreter."""
    from llenergymeasure.files import check_output_dir, check_output_file

    shared = Path("/tmp") / f"llem-ro-{os.getpid()}"
    shared.mkdir(mode=0o755)
    try:
        readonly = shared / "readonly"
        readonly.mkdir(mode=0o555)
        script = (
            "import sys; sys.path.insert(0, sys.argv[1])\n"
            "from llenergymeasure.files import check_output_dir, check_output_file\n"
            "from llenergymeasure.errors import LlemError\n"
            "for check, path in ((check_output_dir, sys.argv[2] + '/out'),\n"
            "                    (check_output_file, sys.argv[2] + '/x.csv')):\n"
            "    try:\n"
            "        check(path)\n"
            "        print('accepted')\n"
            "    except LlemError as exc:\n"
            "        print(exc)\n"
        )
        # The two modules the check needs, copied where `nobody` can read them (the checkout
        # may sit in a directory only root can enter).
        package = shared / "src" / "llenergymeasure"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        for name in ("files.py", "errors.py"):
            shutil.copy(ROOT / "src" / "llenergymeasure" / name, package / name)
        args = [str(shared / "src"), str(readonly)]
        if os.geteuid() == 0:
            python = shutil.which("python3", path="/usr/bin")
            if python is None or shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv and /usr/bin/python3")
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python]
        else:
            command = [sys.executable]
        proc = subprocess.run(
            [*command, "-c", script, *args], capture_output=True, text=True, check=True
        )
        assert proc.stdout.splitlines() == [
            f"-o {readonly}/out: cannot write in {readonly}: it is not writable",
            f"-o {readonly}/x.csv: cannot write in {readonly}: it is not writable",
        ]
        assert list(readonly.iterdir()) == []
        if os.geteuid() == 0:  # root may write there: the same checks accept it
            check_output_dir(readonly / "out")
            check_output_file(readonly / "x.csv")
    finally:
        (shared / "readonly").chmod(0o755)
        shutil.rmtree(shared)


# ---- 4. checks before the model is loaded -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"prompt": "fine"}\n{broken\n', "line 2: not valid JSON"),
        ('{"other": 1}\n', "'prompt' or 'text'"),
        ("\n\n", "holds no prompts"),
    ],
)
def test_bad_prompt_file_found_before_loading_leaves_no_directory(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_model_load: None,
    content: str,
    expected: str,
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(content)
    config = tmp_path / "c.yaml"
    config.write_text(f"prompts: {{source: file, path: {prompts}}}\nbaseline_sec: 0\n")
    code, _, err = llem(capsys, "run", str(config), "-o", str(tmp_path / "out"))
    assert code == 2
    assert expected in one_error_line(err)
    assert not (tmp_path / "out").exists()  # no half directory


def test_unavailable_instrument_found_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model_load: None
) -> None:
    code, _, err = llem(capsys, "run", "--energy", "nvml", "-o", str(tmp_path / "out"))
    assert code == 2
    assert "instrument 'nvml' is unavailable" in one_error_line(err)
    assert not (tmp_path / "out").exists()


def test_a_user_error_after_loading_removes_the_directory_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llenergymeasure.measure import experiment

    def failing(*_: object, **__: object) -> None:
        raise ConfigError("prompt 1 tokenizes to nothing; remove empty prompts")

    monkeypatch.setattr(experiment, "measure_process", failing)
    with pytest.raises(ConfigError):
        experiment.run_experiment({"output_dir": str(tmp_path / "out"), "baseline_sec": 0})
    assert list((tmp_path / "out").iterdir()) == []


# ---- 5. bad flag values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "-b", "eight"], "'--batch-size' / '-b'"),
        (["results", "export", "x", "--format", "xlsx"], "'xlsx' is not one of 'csv', 'parquet'"),
        (["schema", "--kind", "nope"], "'nope' is not one of 'experiment', 'process'"),
        (["run", "--bogus"], "No such option: --bogus"),
        (["report"], "Missing argument 'directory'"),
    ],
)
def test_bad_flag_value_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, _, err = llem(capsys, *args)
    assert code == 2
    line = one_error_line(err)
    assert expected in line
    assert "╭" not in err and "Usage:" not in err
    assert "--help`" in line
    if args[:2] == ["run", "-b"]:
        assert "(got 'eight')" in line and "valid integer" in line


# ---- 6. SIGTERM -------------------------------------------------------------------------------


def test_sigterm_raises_terminated_and_maps_to_143() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    install_sigterm_handler()
    try:
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exit_status(Terminated()) == 143 and exit_status(KeyboardInterrupt()) == 130


def _wait_for(path_glob: Path, pattern: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while not list(path_glob.glob(pattern)):
        assert proc.poll() is None and time.monotonic() < deadline, "never started"
        time.sleep(0.1)


LLEM = [sys.executable, "-m", "llenergymeasure.cli.main"]
SLOW_RUN = "n_prompts: 64\nmax_output_tokens: 64\nbaseline_sec: 0\nwarmup: {mode: fixed, n: 500}\n"


@pytest.mark.slow
def test_sigterm_during_run_logs_and_exits_143(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(SLOW_RUN)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*LLEM, "run", str(config), "-o", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=source_env(),
        cwd=ROOT,
    )
    _wait_for(out, "*/environment.json", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    (directory,) = out.iterdir()
    line = [x for x in err.splitlines() if x.strip()][-1]
    assert line.startswith("terminated: no result written") and "Traceback" not in err
    assert f"{directory} holds config.json, environment.json, run.log" in line
    assert "run ended early: terminated by SIGTERM" in (directory / "run.log").read_text()
    assert not (directory / "result.json").exists()


@pytest.mark.slow
def test_sigterm_during_study_stops_the_experiment_and_exits_143(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text("name: s\nbase:\n" + "".join(f"  {x}\n" for x in SLOW_RUN.splitlines()))
    proc = subprocess.Popen(
        [*LLEM, "study", str(study), "-o", str(tmp_path), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=source_env(),
        cwd=ROOT,
    )
    runs = tmp_path / "s" / "runs"
    _wait_for(runs, "*/environment.json", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    line = [x for x in err.splitlines() if x.strip()][-1]
    assert line.startswith(f"terminated: {tmp_path / 's'} holds 0 of 1 results (")
    assert f"llem study --resume {tmp_path / 's'}" in line
    (run_dir,) = runs.iterdir()
    assert "run ended early: terminated by SIGTERM" in (run_dir / "run.log").read_text()


# ---- 7. smaller config mistakes ---------------------------------------------------------------


def test_empty_experiments_list_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("experiments: []\n")
    with pytest.raises(ConfigError, match="experiments is empty"):
        load_study_config(path)


def test_study_name_error_names_the_value_once(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: a/b\n")
    with pytest.raises(ConfigError) as error:
        load_study_config(path)
    assert str(error.value).count("'a/b'") == 1


def test_jsonl_error_names_both_keys(tmp_path: Path) -> None:
    from llenergymeasure.measure.prompts import read_prompt_file

    path = tmp_path / "p.jsonl"
    path.write_text('{"content": "x"}\n')
    with pytest.raises(ConfigError) as error:
        read_prompt_file(path)
    assert "'prompt'" in str(error.value) and "'text'" in str(error.value)


# ---- 8. duplicated experiment ids ---------------------------------------------------------------


def test_duplicate_id_warning_names_a_few_paths_and_counts_the_rest() -> None:
    result = experiment_result()
    found = ResultSet(
        root=Path("r"),
        loaded=[LoadedResult(Path(f"r/copy{i:04d}/result.json"), result) for i in range(1000)],
    )
    (line,) = found.warnings()
    assert line.startswith(f"experiment id {result.experiment_id} appears in 1000 files: ")
    assert line.count("result.json") == 3 and line.endswith(" and 997 more")


# ---- 2. huge request counts ---------------------------------------------------------------------


def test_huge_n_prompts_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model_load: None
) -> None:
    start = time.monotonic()
    code, _, err = llem(capsys, "run", "-n", "10000000", "-o", str(tmp_path / "out"))
    assert code == 2 and time.monotonic() - start < 10
    line = one_error_line(err)
    assert "n_prompts: 10000000 requests need up to" in line and "at most about" in line
    assert not (tmp_path / "out").exists()


def test_memory_bound_is_the_product_of_counts() -> None:
    config = ExperimentConfig(n_prompts=1000, max_input_tokens=100, max_output_tokens=10)
    assert request_bytes(config) == 1000 * (100 * 64 + 10 * 96)
    check_request_memory(config, available=2 * request_bytes(config))  # fits in half
    with pytest.raises(ConfigError, match="at most about 999"):
        check_request_memory(config, available=2 * request_bytes(config) - 2)


def test_huge_count_in_a_study_refused_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("base: {n_prompts: 1000}\nsweep: {n_prompts: [4, 100000000]}\n")
    with pytest.raises(LlemError, match="n_prompts: 100000000 requests"):
        load_study_config(path)


class CountingTokenizer:
    """Test double: tokenizes by characters and records how many prompts it was given."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        self.calls.append(len(prompts))
        return [[ord(c) % 100 for c in p][:8] for p in prompts]


def test_cycled_prompts_are_tokenized_once_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("one\ntwo\nthree\n")
    config = ExperimentConfig.model_validate(
        {"n_prompts": 30000, "prompts": {"source": "file", "path": str(path)}}
    )
    engine = CountingTokenizer()
    ids, _ = load_prompt_ids(config, engine)  # type: ignore[arg-type]
    assert engine.calls == [3]
    assert len(ids) == 30000 and ids[3] is ids[0] and ids[29999] is ids[2]
    assert len({id(row) for row in ids}) == 3


def test_json_loads_of_results_ok(results_dir: Path) -> None:
    """The fixture's result is real JSON (used by the export/report cases above)."""
    assert json.loads((results_dir / "exp1" / "result.json").read_text())["experiment_id"]


def test_run_llem_subprocess_bad_output_no_traceback(tmp_path: Path) -> None:
    """Through a real process too: exit 2, one line, nothing imported heavy needed."""
    (tmp_path / "afile").write_text("x")
    proc = run_llem("run", "-o", str(tmp_path / "afile"))
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).endswith("is a file, not a directory; give a directory")


def test_prompt_file_read_only_as_far_as_needed(tmp_path: Path) -> None:
    from llenergymeasure.measure.prompts import read_prompt_file

    path = tmp_path / "p.jsonl"
    path.write_text('"a"\n"b"\n"c"\n{broken\n' + '"x"\n' * 200_000)
    assert read_prompt_file(path, limit=3) == ["a", "b", "c"]  # never reaches line 4
    config = ExperimentConfig.model_validate(
        {"n_prompts": 3, "prompts": {"source": "file", "path": str(path)}}
    )
    engine = CountingTokenizer()
    ids, warnings = load_prompt_ids(config, engine)  # type: ignore[arg-type]
    assert engine.calls == [3] and len(ids) == 3 and warnings == []
    with pytest.raises(ConfigError, match="line 4: not valid JSON"):
        read_prompt_file(path, limit=4)
