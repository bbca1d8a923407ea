"""build-mos against the reference implementation, Netflix's sureal 0.9.0, on its published datasets."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from aigciqa.mos.aggregate import MosOptions, build_mos, rescale_z, score_array
from aigciqa.mos.sources import read_source
from aigciqa.mos.sureal_io import dumps_sureal, to_sureal_dataset

sureal = pytest.importorskip("sureal")
from sureal import BT500Model  # noqa: E402
from sureal.dataset_reader import RawDatasetReader  # noqa: E402
from sureal.subjective_model import MosModel, ZscoringMosModel, ZscoringSubjrejMosModel  # noqa: E402
from sureal.tools.misc import import_json_file  # noqa: E402

DATASETS = ["NFLX_dataset_public_raw.json", "NFLX_dataset_public_raw_last4outliers.json"]
VARIANTS = [(BT500Model, False), (ZscoringSubjrejMosModel, True)]


def run_sureal(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = RawDatasetReader(import_json_file(str(path)))
        result = model(reader).run_modeling()
    try:
        observers = [str(o) for o in reader._get_list_observers()]
    except AssertionError:  # list-style os: subjects are the list positions
        observers = [str(k) for k in range(reader.num_observers)]
    return result, observers


def ours(path, zscore, count_unanimous=False, scale=(1, 5)):
    source = read_source(path, scale=scale)
    return build_mos(source.ratings, ["quality"], source.scale,
                     MosOptions(zscore=zscore, count_unanimous=count_unanimous), images=source.image_order())


def as_sureal_units(mos, zscore):
    # z-scored MOS is rescaled z' = 100 (z + 3) / 6; sureal reports z itself.
    return mos * 6.0 / 100.0 - 3.0 if zscore else mos


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("model,zscore", VARIANTS)
def test_rejections_and_mos_equal_sureal(shared_data, name, model, zscore):
    path = shared_data / "sureal" / name
    reference, observers = run_sureal(model, path)
    result = ours(path, zscore)
    expected = {observers[k] for k, rejected in enumerate(reference["observer_rejected"]) if rejected}
    assert set(result.rejected_subjects("quality")) == expected
    mos = as_sureal_units(result.table["quality_mos"].to_numpy(), zscore)
    np.testing.assert_allclose(mos, reference["quality_scores"], rtol=0, atol=1e-9)
    # mos.csv keeps sureal's asset ids, in the dataset's order.
    assets = [str(v["asset_id"]) for v in json.loads(path.read_text())["dis_videos"]]
    assert result.table["image_id"].tolist() == assets


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("model,zscore", VARIANTS)
def test_per_subject_statistics_equal_sureal_with_the_literal_rule(shared_data, name, model, zscore):
    reference, _ = run_sureal(model, shared_data / "sureal" / name)
    screening = ours(shared_data / "sureal" / name, zscore, count_unanimous=True).perspectives["quality"].screening
    np.testing.assert_allclose(screening.statistics["outside_rate"], reference["observer_rejected_1st_stats"],
                               atol=1e-12)
    np.testing.assert_allclose(screening.statistics["balance"], reference["observer_rejected_2nd_stats"],
                               atol=1e-12, equal_nan=True)


def test_outlier_file_rejects_26_28_29_and_keeps_27(shared_data):
    result = ours(shared_data / "sureal" / "NFLX_dataset_public_raw_last4outliers.json", zscore=False)
    assert result.rejected_subjects("quality") == ["26", "28", "29"]
    screening = result.perspectives["quality"].screening
    assert screening.statistics["balance"][27] == pytest.approx(1 / 3)


def test_unanimous_stimulus_rule_only_changes_statistics_on_the_public_set(shared_data):
    # NFLX_dataset_public_raw has one stimulus that every subject scored alike.
    path = shared_data / "sureal" / "NFLX_dataset_public_raw.json"
    default, literal = ours(path, False), ours(path, False, count_unanimous=True)
    assert default.rejected_subjects("quality") == literal.rejected_subjects("quality") == ["2"]
    p_default = default.perspectives["quality"].screening.statistics["P"]
    p_literal = literal.perspectives["quality"].screening.statistics["P"]
    np.testing.assert_array_equal(p_literal - p_default, 1.0)


@pytest.mark.parametrize("model,zscore", VARIANTS)
def test_wide_matrix_with_missing_score_equals_sureal(shared_data, tmp_path, model, zscore):
    csv_path = shared_data / "sureal" / "bt500demo_sample_data.csv"
    source = read_source(csv_path, scale=(1, 5))
    assert len(source.ratings) == 79 * 26 - 1  # one 'nan' cell = not rated
    exported = tmp_path / "bt500demo.json"
    exported.write_text(dumps_sureal(to_sureal_dataset(source.ratings, "quality")))
    reference, observers = run_sureal(model, exported)
    result = ours(csv_path, zscore)
    expected = {observers[k] for k, rejected in enumerate(reference["observer_rejected"]) if rejected}
    assert set(result.rejected_subjects("quality")) == expected and expected
    np.testing.assert_allclose(as_sureal_units(result.table["quality_mos"].to_numpy(), zscore),
                               reference["quality_scores"], atol=1e-9)


def sparse_repeated_ratings(seed=3):
    """A sparse design with repetitions: 12 subjects each rate a random 70 % of 40 images, some twice."""
    rng = np.random.default_rng(seed)
    rows = []
    true = rng.uniform(1, 5, 40)
    for s in range(12):
        bias, noise = rng.normal(0, 0.4), rng.uniform(0.3, 0.9)
        for e in np.flatnonzero(rng.random(40) < 0.7):
            for _ in range(1 + (rng.random() < 0.2)):
                rows.append((f"s{s}", f"img{e}", "quality", float(np.clip(np.round(true[e] + bias + rng.normal(0, noise)), 1, 5))))
    for e in range(40):  # every image rated at least once
        rows.append(("s_fill", f"img{e}", "quality", float(np.round(true[e]))))
    return pd.DataFrame(rows, columns=["subject_id", "image_id", "perspective", "score"])


@pytest.mark.parametrize("model,plain_model,zscore", [(BT500Model, MosModel, False),
                                                      (ZscoringSubjrejMosModel, ZscoringMosModel, True)])
def test_sparse_repeated_export_round_trips_through_sureal(tmp_path, model, plain_model, zscore):
    ratings = sparse_repeated_ratings()
    path = tmp_path / "sparse.json"
    path.write_text(dumps_sureal(to_sureal_dataset(ratings, "quality", scale=(1, 5))))
    # sureal reads back exactly our (S, R, E) array (its axes are E, S, R).
    array = score_array(ratings)
    reader = RawDatasetReader(import_json_file(str(path)))
    observers = [str(o) for o in reader._get_list_observers()]
    order = [list(array.subjects).index(o) for o in observers]
    np.testing.assert_array_equal(np.transpose(reader.opinion_score_3darray, (1, 2, 0)), array.scores[order])
    # Without screening, the MOS of a sparse design with repetitions equals sureal's.
    plain, _ = run_sureal(plain_model, path)
    result = build_mos(ratings, ["quality"], (1, 5), MosOptions(zscore=zscore, screening="none"))
    np.testing.assert_allclose(as_sureal_units(result.table["quality_mos"].to_numpy(), zscore),
                               plain["quality_scores"], atol=1e-9)
    # Screening counts the same scores outside the band (P + Q); only N differs by design: ours is
    # the number of scores the subject gave, sureal's is stimuli x max repetitions for everybody.
    reference, _ = run_sureal(model, path)
    literal = MosOptions(zscore=zscore, count_unanimous=True)  # sureal's rule for zero-spread stimuli
    statistics = build_mos(ratings, ["quality"], (1, 5), literal).perspectives[
        "quality"].screening.statistics
    n_subjects, repetitions, n_images = array.scores.shape
    np.testing.assert_allclose((statistics["outside_rate"] * statistics["N"])[order],
                               np.asarray(reference["observer_rejected_1st_stats"]) * n_images * repetitions,
                               atol=1e-9)
    np.testing.assert_array_equal(statistics["N"][order], (~np.isnan(array.scores[order])).sum(axis=(1, 2)))


def test_rescale_maps_z_minus3_to_0_and_plus3_to_100():
    assert rescale_z(np.array([-3.0, 0.0, 3.0])).tolist() == [0.0, 50.0, 100.0]


def accepted_only_dataset(path, rejected, tmp_path):
    """The sureal dataset without the rejected subjects (what sureal's MOS models then average)."""
    source = read_source(path, scale=(1, 5))
    kept = source.ratings[~source.ratings["subject_id"].astype(str).isin(rejected)]
    out = tmp_path / "accepted.json"
    out.write_text(dumps_sureal(to_sureal_dataset(kept, "quality", scale=(1, 5))))
    return out


@pytest.mark.parametrize("name", DATASETS)
def test_screen_first_order_equals_sureal_bt500_then_zscoring_mos(shared_data, tmp_path, name):
    # The paper's order: BT.500 on the raw scores (sureal's BT500Model rejections), then z-scores of
    # the accepted subjects only (sureal's ZscoringMosModel on the dataset without the rejected).
    path = shared_data / "sureal" / name
    screened, observers = run_sureal(BT500Model, path)
    source = read_source(path, scale=(1, 5))
    result = build_mos(source.ratings, ["quality"], source.scale, MosOptions(order="screen-first"),
                       images=source.image_order())
    expected = {observers[k] for k, rejected in enumerate(screened["observer_rejected"]) if rejected}
    assert set(result.rejected_subjects("quality")) == expected and expected
    zscored, _ = run_sureal(ZscoringMosModel, accepted_only_dataset(path, expected, tmp_path))
    np.testing.assert_allclose(as_sureal_units(result.table["quality_mos"].to_numpy(), True),
                               zscored["quality_scores"], atol=1e-9)
    # The default order screens z-scores: on the outlier file it rejects differently, so the option matters.
    default = ours(path, zscore=True)
    assert default.table["quality_mos"].to_numpy() != pytest.approx(result.table["quality_mos"].to_numpy())
