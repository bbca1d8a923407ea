"""Z-scores, MOS statistics, screening options and score outliers on small arrays with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aigciqa.errors import InputError
from aigciqa.mos.aggregate import (MosOptions, build_mos, mos_statistics, score_array, screening_report,
                                   zscore)
from aigciqa.mos.screening import bt500_screening, correlation_screening, score_outliers


def long_table(matrix, perspective="quality"):
    """(S, E) matrix -> long ratings (NaN = not rated)."""
    rows = [(f"s{s}", f"i{e}", perspective, float(v)) for s, row in enumerate(matrix) for e, v in enumerate(row)
            if not np.isnan(v)]
    return pd.DataFrame(rows, columns=["subject_id", "image_id", "perspective", "score"])


def panel(seed=0, n_subjects=20, n_images=60, random_raters=0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(1, 4, n_images)
    matrix = np.clip(np.round(true + rng.normal(0, 0.3, (n_subjects, 1)) + rng.normal(0, 0.5, (n_subjects, n_images))), 0, 5)
    if random_raters:
        matrix[-random_raters:] = rng.integers(0, 6, (random_raters, n_images))
    return matrix, true


def test_zscore_uses_each_subjects_mean_and_sample_std():
    matrix, _ = panel()
    matrix[3, 5] = np.nan
    z, mu, sigma = zscore(matrix[:, None, :])
    for s in (0, 3):
        row = matrix[s][~np.isnan(matrix[s])]
        np.testing.assert_allclose(z[s, 0][~np.isnan(matrix[s])], stats.zscore(row, ddof=1))
        assert sigma[s] == pytest.approx(np.std(row, ddof=1))


def test_mos_statistics_std_ci_and_count():
    values = np.array([[[1.0, 2.0]], [[3.0, np.nan]], [[4.0, 2.0]]])  # 3 subjects, 2 images
    result = mos_statistics(values)
    assert result["n"].tolist() == [3, 2]
    np.testing.assert_allclose(result["mean"], [8 / 3, 2.0])
    np.testing.assert_allclose(result["std"], [np.std([1, 3, 4], ddof=1), 0.0])
    low, high = stats.t.interval(0.95, 2, loc=8 / 3, scale=stats.sem([1, 3, 4]))
    assert result["ci"][0] == pytest.approx((high - low) / 2)


def test_single_score_has_no_std_or_interval():
    result = mos_statistics(np.array([[[5.0]], [[np.nan]]]))
    assert result["n"].tolist() == [1] and np.isnan(result["std"][0]) and np.isnan(result["ci"][0])


def test_zscored_mos_is_rescaled_to_0_100_and_raw_mos_stays_on_the_scale():
    matrix, true = panel()
    ratings = long_table(matrix)
    z = build_mos(ratings, ["quality"], (0, 5))
    raw = build_mos(ratings, ["quality"], (0, 5), MosOptions(zscore=False, screening="none"))
    assert z.mos_range == (0.0, 100.0) and raw.mos_range == (0.0, 5.0)
    assert 30 < z.table["quality_mos"].mean() < 70
    np.testing.assert_allclose(raw.table["quality_mos"], np.nanmean(matrix, axis=0))
    assert stats.pearsonr(z.table["quality_mos"], true)[0] > 0.95
    np.testing.assert_allclose(raw.table["quality_std_raw"], np.std(matrix, axis=0, ddof=1))


def test_bt500_catches_random_raters_but_not_a_biased_subject():
    matrix, _ = panel(seed=4, random_raters=2)
    matrix[0] = np.clip(matrix[0] + 1, 0, 5)  # a lenient but attentive subject
    screening = bt500_screening(matrix[:, None, :])
    assert screening.rejected[-2:].all() and not screening.rejected[0]


def test_if_every_subject_fails_none_is_rejected():
    # Every subject is "outside" on both sides equally often: on each image six of eight subjects give 3,
    # one gives 5 and one gives 1 (kurtosis 4, still "normal", so the band is mean +- 2 sd = 1..5, edges
    # included), and who is high and who is low rotates. Everybody fails BT.500; then nobody is rejected.
    subjects, images = 8, 40
    matrix = np.full((subjects, images), 3.0)
    for image in range(images):
        matrix[image % subjects, image] = 5.0
        matrix[(image + 1) % subjects, image] = 1.0
    screening = bt500_screening(matrix[:, None, :])
    failed = ((screening.statistics["outside_rate"] > screening.thresholds["outside_rate_above"])
              & (screening.statistics["balance"] < screening.thresholds["balance_below"]))
    assert failed.all()  # the data is what the comment says: every subject fails both criteria
    assert screening.all_rejected_kept and not screening.rejected.any()
    # The literal rule on a unanimous panel (every score on both band edges) fails everybody too.
    forced = bt500_screening(np.repeat(matrix[:1], 6, axis=0)[:, None, :], count_unanimous=True)
    assert forced.all_rejected_kept and not forced.rejected.any()
    # One subject fewer failing: the others are rejected as usual (the rule is not "reject nobody").
    matrix[0] = 3.0
    partial = bt500_screening(matrix[:, None, :])
    assert not partial.all_rejected_kept and partial.rejected[1:].any() and not partial.rejected[0]


def test_correlation_screening_rejects_a_contrarian():
    matrix, _ = panel(seed=2)
    matrix[5] = 5 - matrix[5]  # reversed scale
    screening = correlation_screening(matrix[:, None, :])
    assert np.flatnonzero(screening.rejected).tolist() == [5]
    assert screening.thresholds["correlation_below"] <= 0.7
    assert screening.statistics["correlation"][5] < 0


def test_scope_any_drops_a_subject_from_every_perspective():
    matrix, _ = panel(seed=6, random_raters=2)
    good, _ = panel(seed=5)
    ratings = pd.concat([long_table(matrix, "quality"), long_table(good, "authenticity")], ignore_index=True)
    per = build_mos(ratings, ["quality", "authenticity"], (0, 5))
    anywhere = build_mos(ratings, ["quality", "authenticity"], (0, 5), MosOptions(scope="any"))
    assert per.rejected_subjects("quality") == ["s18", "s19"]
    assert "s18" not in per.rejected_subjects("authenticity")
    union = set(per.rejected_subjects("quality")) | set(per.rejected_subjects("authenticity"))
    assert set(anywhere.rejected_subjects("authenticity")) == set(anywhere.rejected_subjects("quality")) == union
    assert (anywhere.table["authenticity_n"] < per.table["authenticity_n"]).all()


def test_score_outlier_removal_reports_its_rate():
    matrix, _ = panel(seed=7, random_raters=3)
    result = build_mos(long_table(matrix), ["quality"], (0, 5),
                       MosOptions(zscore=False, screening="none", remove_score_outliers=True))
    removed = result.perspectives["quality"].score_outliers
    assert removed.sum() == score_outliers(matrix[:, None, :]).sum() > 0
    assert removed[-3:].sum() > removed[:-3].sum()  # mostly the random raters' scores
    assert (result.table["quality_n"] == 20 - removed.sum(axis=(0, 1))).all()
    report = screening_report(result)["perspectives"]["quality"]["score_outliers"]
    assert report == {"removed": int(removed.sum()), "of": 1200, "rate": removed.sum() / 1200}
    off = build_mos(long_table(matrix), ["quality"], (0, 5), MosOptions(zscore=False, screening="none"))
    assert (off.table["quality_n"] == 20).all()  # off by default


def test_score_array_puts_repetitions_in_their_own_slot():
    ratings = pd.DataFrame({"subject_id": ["a", "a", "b", "a"], "image_id": ["x", "y", "x", "x"],
                            "perspective": "q", "score": [1.0, 2.0, 3.0, 5.0]})
    array = score_array(ratings)
    assert array.scores.shape == (2, 2, 2)
    assert array.scores[0, :, 0].tolist() == [1.0, 5.0] and np.isnan(array.scores[1, 1, 0])
    assert array.first_row.tolist() == [0, 2]


def test_an_image_missing_a_perspective_is_reported():
    matrix, _ = panel()
    ratings = pd.concat([long_table(matrix, "quality"), long_table(matrix[:, :-1], "authenticity")])
    with pytest.raises(InputError, match="image 'i59' has no 'authenticity' rating"):
        build_mos(ratings, ["quality", "authenticity"], (0, 5))


def test_unknown_screening_method_suggests_the_right_name():
    with pytest.raises(InputError, match="did you mean 'bt500'"):
        MosOptions(screening="bt50").check()
