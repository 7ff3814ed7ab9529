"""Rules of the results files, written before the tests:

- the per-image scores file sits beside the JSON, same stem, suffix ``.npz`` (only the last suffix replaced);
- saving is deterministic: the same arrays give the same bytes whatever the clock, the arrays' memory order or the
  order they are given in, and the shipped ``.npz`` is exactly what saving its own arrays writes;
- saving never leaves a half-written file: a failed save keeps the previous file as it was and leaves no temporary
  file; an object (pickled) column is refused on save and on load;
- reading a JSON file that is missing, not JSON or not UTF-8 text gives a ``ResultsError`` naming the file;
- the schema version is checked before any field, and the message says what to do;
- a claim is confirmatory exactly when its family says so; a run is named by its label, else by its seed.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from res2net.evaluation.results import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    BucketBaselines,
    Claim,
    Results,
    ResultsError,
    RunEntry,
    image_scores_path,
    load_image_scores,
    load_results,
    save_image_scores,
    validate_results,
)

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "results" / "tiny_imagenet_100.json"


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(SHIPPED.read_text())


def test_the_scores_file_replaces_only_the_last_suffix() -> None:
    assert image_scores_path("out/run.json") == Path("out/run.npz")
    assert image_scores_path(Path("/a/b/tiny.v2.json")) == Path("/a/b/tiny.v2.npz")
    assert image_scores_path("noext") == Path("noext.npz")


def test_saving_the_shipped_arrays_writes_the_shipped_file_byte_for_byte(tmp_path: Path) -> None:
    shipped = image_scores_path(SHIPPED)
    arrays = load_image_scores(shipped)
    assert arrays and all(isinstance(v, np.ndarray) for v in arrays.values())
    out = tmp_path / "again.npz"
    save_image_scores(out, dict(reversed(list(arrays.items()))))  # given in another order
    assert out.read_bytes() == shipped.read_bytes()
    with zipfile.ZipFile(shipped) as z:
        infos = z.infolist()
    assert [i.filename for i in infos] == sorted(f"{k}.npy" for k in arrays)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}  # no clock in the bytes
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_the_same_values_give_the_same_bytes_whatever_their_memory_order(tmp_path: Path) -> None:
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_image_scores(tmp_path / "c.npz", {"a/energy": grid, "b": np.array([1, 2], np.int16)})
    save_image_scores(tmp_path / "f.npz", {"b": np.array([1, 2], np.int16), "a/energy": np.asfortranarray(grid)})
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "f.npz").read_bytes()
    back = load_image_scores(tmp_path / "f.npz")
    assert sorted(back) == ["a/energy", "b"]
    assert back["a/energy"].dtype == np.float32 and back["b"].dtype == np.int16
    np.testing.assert_array_equal(back["a/energy"], grid)
    assert back["a/energy"].flags.c_contiguous


def test_a_failed_save_keeps_the_previous_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "scores.npz"
    save_image_scores(path, {"x": np.ones(3)})
    before = path.read_bytes()
    with pytest.raises(ValueError):  # an object column would need pickle
        save_image_scores(path, {"x": np.ones(3), "y": np.array([{"a": 1}], dtype=object)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.npz"]


def test_a_save_that_cannot_start_raises_its_own_error_not_the_clean_up_s(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as e:
        save_image_scores(tmp_path / "missing" / "scores.npz", {"x": np.ones(2)})
    assert e.value.__context__ is None  # nothing failed while cleaning up after it


def test_a_pickled_column_is_refused_on_load(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, ok=np.ones(2), bad=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_image_scores(path)


def test_a_file_that_cannot_be_read_as_json_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ResultsError, match=rf"^{missing} cannot be read as JSON: .*No such file"):
        load_results(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 3,')
    with pytest.raises(ResultsError, match=rf"^{broken} cannot be read as JSON: Expecting"):
        load_results(broken)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"dataset": "caf\xe9"}')
    with pytest.raises(ResultsError, match=rf"^{latin} cannot be read as JSON: .*utf-8"):
        load_results(latin)


def test_a_utf8_file_loads_whatever_the_locale(tmp_path: Path, raw: dict) -> None:
    named = copy.deepcopy(raw)
    named["dataset"] = "tiny-imagenet-100 val — façade"
    path = tmp_path / "r.json"
    path.write_bytes(json.dumps(named, ensure_ascii=False).encode("utf-8"))
    assert load_results(path).dataset == "tiny-imagenet-100 val — façade"
    env = os.environ | {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code = "import sys; from res2net.evaluation.results import load_results; print(ascii(load_results(sys.argv[1])" \
        ".dataset))"
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True).stdout
    assert out.strip() == ascii("tiny-imagenet-100 val — façade")  # an ASCII locale reads the same file


def test_a_problem_inside_a_file_names_the_file(tmp_path: Path, raw: dict) -> None:
    bad = copy.deepcopy(raw)
    del bad["prior"]["sigma_px"]
    path = tmp_path / "named.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ResultsError) as e:
        load_results(path)
    assert str(e.value) == f"{path}: prior lacks sigma_px"


def test_the_version_is_checked_first_and_the_message_says_what_to_do(raw: dict) -> None:
    for version in (True, 4, SCHEMA_VERSION + 1, "3"):
        with pytest.raises(ResultsError) as e:
            validate_results({"schema_version": version}, "f.json")
        assert str(e.value) == (f"f.json has schema version {version!r}; this version of res2scope reads version "
                                f"{SCHEMA_VERSION} (and {READABLE_VERSIONS[0]}, whose newer fields are absent; "
                                "regenerate it with `python -m res2net.evaluate`)")
    with pytest.raises(ResultsError) as e:
        validate_results({"dataset": "x"})
    assert str(e.value).startswith("results has schema version None;")  # the default name of the origin
    with pytest.raises(ResultsError) as e:
        Results.from_json({"schema_version": 1})
    assert str(e.value).startswith("results has schema version 1;")
    with pytest.raises(ResultsError) as e:
        validate_results("not an object")
    assert str(e.value) == "results is not a JSON object of evaluation results"
    for version in READABLE_VERSIONS:  # each readable version gets past the check to the fields
        with pytest.raises(ResultsError) as e:
            validate_results({"schema_version": version}, "f.json")
        assert str(e.value).startswith("f.json lacks dataset, images")


def test_a_missing_field_is_named_in_the_default_origin(raw: dict) -> None:
    bad = copy.deepcopy(raw)
    del bad["claims"][0]["verdict"]
    with pytest.raises(ResultsError) as e:
        validate_results(bad)
    assert str(e.value) == f"results: claims[0] ({raw['claims'][0]['id']!r}) lacks verdict"


def test_confirmatory_follows_the_family_and_a_run_is_named_by_its_label(raw: dict) -> None:
    claim = raw["claims"][0]
    for family, expected in (("confirmatory", True), ("exploratory", False), ("Confirmatory", False)):
        assert Claim.from_json(claim | {"family": family}).confirmatory is expected
    run = {"seed": 2, "top1": 40.0, "top5": 70.0, "weights_sha256": None}
    assert RunEntry.from_json(run).name == "seed 2"
    assert RunEntry.from_json(run | {"run": "random-init"}).name == "random-init"
    assert RunEntry.from_json(run | {"run": ""}).name == ""  # an empty label is still a label


def test_the_prior_scores_keep_their_metric_names_and_prefix_only_at_the_start() -> None:
    obj = {"images": 3, "uniform_energy": 0.25, "prior_energy": 0.5, "prior_pointing": None,
           "energy_prior_x": 1.0}  # the last merely contains prior_: not a prior score, and not declared
    b = BucketBaselines.from_json(obj)
    assert b.prior == {"energy": 0.5, "pointing": None}
    assert b.to_json() == {"images": 3, "uniform_energy": 0.25, "prior_energy": 0.5, "prior_pointing": None}
    assert list(b.to_json())[:2] == ["images", "uniform_energy"]
