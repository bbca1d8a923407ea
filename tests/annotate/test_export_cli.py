"""Export (merging stores, gold agreement, summary), status, the command line and the demo path."""

from __future__ import annotations

import json

import pytest

from aigciqa.annotate.export import SUMMARY_FILE, build_export, export
from aigciqa.annotate.store import AnswerStore
from aigciqa.cli import main
from aigciqa.errors import InputError

from .test_store_session import COMPLETE, answer, session_for


def rate(session, n, values=COMPLETE):
    for _ in range(n):
        answer(session, values)
        assert session.next() == []


def test_stores_of_two_machines_are_merged_into_contract_tables(folder):
    s1 = session_for(folder, "s1", store=AnswerStore(folder.root / "annotations-s1.sqlite"))
    s2 = session_for(folder, "s2", store=AnswerStore(folder.root / "annotations-s2.sqlite"))
    rate(s1, 3)
    s1.set_answer("quality", 1)  # started, not finished: not exported
    rate(s2, 6)
    summary = export(folder)
    ratings, answers = folder.read_table("ratings"), folder.read_table("answers")
    assert list(ratings.columns[:4]) == ["subject_id", "image_id", "perspective", "score"]
    assert ratings.groupby("subject_id").size().to_dict() == {"s1": 9, "s2": 18}
    assert set(ratings.loc[ratings.subject_id == "s1", "image_id"]) == {i.image_id for i in s1.items[:3]}
    assert answers.groupby("subject_id").size().to_dict() == {"s1": 15, "s2": 30}
    assert ratings["t_start"].str.match(r"\d{4}-\d\d-\d\dT").all()
    on_disk = json.loads((folder.root / SUMMARY_FILE).read_text())
    assert on_disk == summary
    assert {s["subject_id"]: (s["items_done"], s["items_total"]) for s in summary["subjects"]} == {
        "s1": (3, 6), "s2": (6, 6)}
    assert folder.read_card()["provenance"]["annotate"]["tool_version"]


def test_same_subject_on_two_machines_latest_answer_wins(folder):
    first = session_for(folder, "s1", store=AnswerStore(folder.root / "annotations-a.sqlite"))
    rate(first, 1, {**COMPLETE, "quality": 2})
    second = session_for(folder, "s1", store=AnswerStore(folder.root / "annotations-b.sqlite"))
    second.clock.now = first.clock.now + 60
    rate(second, 1, {**COMPLETE, "quality": 5})  # the same seeded order: the same first item
    ratings, _, summary = build_export(folder)
    assert ratings.loc[ratings.perspective == "quality", "score"].tolist() == [5.0]
    assert summary["subjects"][0]["stores"] == ["annotations-a.sqlite", "annotations-b.sqlite"]


def test_gold_agreement_is_reported_and_can_exclude_subjects(folder):
    first_id = "img0"
    config = {"gold": {"repeat": 1, "known": [{"image_id": first_id, "answers": {"quality": 3, "clarity": 4}}],
                       "min_agreement": 0.95}}
    careless = session_for(folder, "careless", config)
    careful = session_for(folder, "careful", config)
    for session, repeat_quality in ((careless, 1), (careful, 3)):
        while not session.all_done:
            is_repeat = session.item().kind == "repeat"
            answer(session, {**COMPLETE, "quality": repeat_quality} if is_repeat else COMPLETE)
            assert session.next() == []
    _, _, summary = build_export(folder)
    by_subject = {s["subject_id"]: s for s in summary["subjects"]}
    careless = by_subject["careless"]
    assert careless["items_total"] == 7 and careless["items_done"] == 7
    assert careless["repeat_checks"] == 8 and careless["repeat_agreement"] == 7 / 8
    assert careless["known_checks"] == 2 and careless["known_agreement"] == 1.0
    assert careless["agreement"] == 9 / 10 and careless["low_agreement"]
    assert by_subject["careful"]["agreement"] == 1.0 and not by_subject["careful"]["low_agreement"]
    ratings, _, summary = build_export(folder, exclude_low_agreement=True)
    assert set(ratings["subject_id"]) == {"careful"} and summary["excluded_low_agreement"] == ["careless"]
    assert len(ratings) == 6 * 3  # the repetition is not a second rating


def test_nothing_to_export_writes_nothing(folder):
    with pytest.raises(InputError, match="no annotation store"):
        export(folder)
    session = session_for(folder)
    session.set_answer("quality", 3)
    with pytest.raises(InputError, match="nothing to export"):
        export(folder)
    assert not folder.has("ratings") and not folder.has("answers") and not (folder.root / SUMMARY_FILE).exists()


def test_cli_status_and_export(folder, capsys):
    rate(session_for(folder, "s1"), 2)
    assert main(["annotate", "status", str(folder.root)]) == 0
    out = capsys.readouterr().out
    assert "s1" in out and "2/6" in out
    assert main(["annotate", "export", str(folder.root)]) == 0
    assert "exported 6 ratings and 10 answers" in capsys.readouterr().out
    assert folder.has("ratings")


def test_status_of_a_folder_that_is_not_a_database_is_an_error(folder, tmp_path, capsys):
    for where in (tmp_path / "nope", tmp_path):  # missing; a folder without dataset.json
        assert main(["annotate", "status", str(where)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"aigciqa annotate status: error: {where}: not a database folder")
    assert main(["annotate", "status", str(folder.root)]) == 0  # a database nobody has rated yet
    assert f"no annotation store in {folder.root} yet" in capsys.readouterr().out


def test_cli_refuses_bad_input_before_opening_anything(folder, tmp_path, capsys, monkeypatch):
    assert main(["annotate", str(folder.root), "--subject", "anna müller"]) == 2
    assert "not allowed" in capsys.readouterr().err
    config = tmp_path / "study.json"
    config.write_text(json.dumps({"perspectives": ["quality", "beauty"]}))
    assert main(["annotate", str(folder.root), "--study", str(config)]) == 2
    assert "field 'perspectives/1'" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["annotate", str(folder.root), "--subject", "s1"]) == 2
    assert "cannot open a window" in capsys.readouterr().err
    assert not (folder.root / "annotations.sqlite").exists()
    with pytest.raises(SystemExit):
        main(["annotate", "frobnicate", str(folder.root)])


@pytest.mark.slow
def test_demo_step_records_a_simulated_panel_that_build_mos_reads(tmp_path):
    pytest.importorskip("aigciqa.mos.simulate")
    from aigciqa.annotate.demo import demo_step
    from aigciqa.demo import DemoContext, example_folder
    context = DemoContext(out=tmp_path, n_prompts=3, samples=1)
    example_folder(context)
    assert "simulated subjects" in demo_step(context)
    folder = context.folder
    with AnswerStore(folder.root / "annotations.sqlite") as store:
        assert len(store.subjects()) == 12
        assert all(len(store.finished_positions(s)) == 9 for s in store.subjects())
    ratings = folder.read_table("ratings")
    assert len(ratings) == 12 * 9 * 3
    assert main(["build-mos", str(folder.root)]) == 0
    assert folder.has("mos")


def rate_varied(session, n, seconds=5.0, constant=False):
    """n items with scores that vary from item to item (or one quality score throughout), ``seconds`` each."""
    for k in range(n):
        varied = {p: (k + j) % 6 for j, p in enumerate(("quality", "authenticity", "correspondence"))}
        answer(session, {**COMPLETE, **varied, **({"quality": 3} if constant else {})})
        session.clock.now += seconds
        assert session.next() == []


def test_export_filters_let_a_study_in_progress_feed_build_mos(folder, capsys):
    rate_varied(session_for(folder, "s1"), 6)
    rate_varied(session_for(folder, "s2"), 6)
    rate_varied(session_for(folder, "few"), 1)  # one item: cannot be z-scored
    rate_varied(session_for(folder, "flat"), 6, constant=True)  # one quality score for every image
    rate_varied(session_for(folder, "named"), 6)
    assert main(["annotate", "export", str(folder.root)]) == 0
    capsys.readouterr()
    assert main(["build-mos", str(folder.root)]) == 2  # what stopped build-mos before
    assert "subject 'few'" in capsys.readouterr().err
    assert main(["annotate", "export", str(folder.root), "--min-items", "2", "--exclude-flagged",
                 "--exclude-subject", "named"]) == 0
    out = capsys.readouterr().out
    assert "left out few: 1 item(s) done, fewer than 2" in out
    assert "left out flat: flagged: one quality score for every image" in out
    assert "left out named: named" in out
    summary = json.loads((folder.root / SUMMARY_FILE).read_text())
    assert [o["subject_id"] for o in summary["left_out"]] == ["few", "flat", "named"]
    assert set(folder.read_table("ratings")["subject_id"]) == {"s1", "s2"}
    assert main(["build-mos", str(folder.root)]) == 0
    assert main(["annotate", "export", str(folder.root), "--exclude-subject", "nobody"]) == 2
    assert "subject 'nobody' to leave out is in no store" in capsys.readouterr().err


def test_status_flags_speeding_and_low_agreement_live(folder, capsys):
    config = {"gold": {"known": [{"image_id": f"img{k}", "answers": {"quality": 0}} for k in range(6)],
                       "min_agreement": 0.8}}
    rate_varied(session_for(folder, "careful", config), 4, seconds=20)
    rate_varied(session_for(folder, "hasty", config), 4, seconds=0.5)
    assert main(["annotate", "status", str(folder.root)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "SPEEDING (0.5 S PER ITEM)" in lines["hasty"] and "LOW AGREEMENT" in lines["hasty"]
    assert "SPEEDING" not in lines["careful"] and "LOW AGREEMENT" in lines["careful"]
    assert lines["careful"].split()[1] == "4/6"
