"""The command-line convention of docs/cli.md, checked on the real parsers, and the old spellings that
still work for one release (each printing one deprecation line that names the new spelling)."""

import argparse
import ast
import importlib
import json

import pandas as pd
import pytest

from aigciqa.cli import COMMANDS, build_parser, command_word, main
from aigciqa.database import DatabaseFolder, default_card

# Commands that do not start with a database folder, and their positionals instead.
NO_DB_FIRST = {("import",): ["KIND", "SRC", "DB"], ("prompts", "select"): ["PARTI_TSV"], ("prompts", "show"): [None],
               ("score",): ["IMAGE"], ("demo",): [],
               # weights work on the Hugging Face cache and model folders; verify also takes a DB
               ("weights", "list"): [], ("weights", "download"): ["NAME|SPEC"], ("weights", "verify"): ["FOLDER|DB|SPEC"]}


def leaf_parsers():
    """(command words, parser) of every command and sub-action."""
    def walk(words, parser):
        sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not sub:
            yield words, parser
            return
        for name, child in sub[0].choices.items():
            yield from walk(words + [name], child)
    yield from walk([], build_parser())


LEAVES = list(leaf_parsers())


def positionals(parser):
    return [a for a in parser._actions if not a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, argparse._SubParsersAction)]


@pytest.mark.parametrize("words,parser", LEAVES, ids=[" ".join(w) for w, _ in LEAVES])
def test_the_database_folder_is_the_first_positional_and_is_called_db(words, parser):
    metavars = [a.metavar for a in positionals(parser)]
    if tuple(words) in NO_DB_FIRST:
        assert metavars == NO_DB_FIRST[tuple(words)]
    else:
        assert metavars[0] == "DB", words


@pytest.mark.parametrize("words,parser", LEAVES, ids=[" ".join(w) for w, _ in LEAVES])
def test_outputs_are_o_out_and_json_takes_a_file(words, parser):
    visible = [a for a in parser._actions if a.help != argparse.SUPPRESS]
    for action in visible:
        assert "--output" not in action.option_strings, words
        if action.dest == "out":
            assert action.option_strings == ["-o", "--out"], words
        if "--json" in action.option_strings:
            assert action.metavar == "FILE" and action.nargs != 0, words
        if "--format" in action.option_strings:  # one meaning: build-vqa's output layout
            assert words == ["build-vqa"]


def test_every_command_is_in_the_table_and_the_table_imports_no_stage():
    assert sorted({words[0] for words, _ in LEAVES}) == sorted(COMMANDS)
    parser = build_parser([])  # --help's parser: names and summaries only
    choices = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices
    assert list(choices) == list(COMMANDS)


def parsed(argv):
    """What ``main`` parses ``argv`` into (old spellings rewritten first)."""
    module = importlib.import_module(COMMANDS[command_word(argv)].module)
    argv = getattr(module, "upgrade_argv", lambda a: a)(argv)
    return build_parser([argv[0]]).parse_args(argv)


@pytest.mark.parametrize("old,check,new", [
    (["import", "meta-csv", "a.csv", "db", "--preset", "koniq10k"], lambda a: a.layout == "koniq10k", "--layout"),
    (["import", "meta-csv", "a.csv", "db", "--split", "fold=official"],
     lambda a: a.split_column == ["fold=official"], "--split-column"),
    (["build-vqa", "db", "--output", "x.json"], lambda a: str(a.out) == "x.json", "-o/--out"),
    (["annotate", "db", "--subject", "s1"], lambda a: a.action == "open" and a.db == "db", "annotate open DB"),
    (["train", "db", "--split", "s"], lambda a: a.stage == "scorer" and a.db == "db", "train scorer DB"),
    (["train", "db", "--split", "s", "--stage", "2", "--from", "r", "--lora-rank", "4"],
     lambda a: a.stage == "instruct" and a.llm_lora_rank == 4 and a.from_run == "r", "train instruct DB"),
    (["train", "db", "--split", "s", "--stage", "3", "--from", "r"], lambda a: a.stage == "feedback", "train feedback"),
])
def test_old_spellings_parse_as_the_new_ones_with_a_deprecation_line(old, check, new, capsys):
    args = parsed(old)
    assert check(args)
    err = capsys.readouterr().err
    assert "deprecated" in err and new in err, err


@pytest.mark.parametrize("argv,hint", [(["annotate", "opn"], "did you mean 'open'"),
                                        (["train", "scorr", "--split", "s"], "did you mean 'scorer'")])
def test_a_mistyped_subcommand_gets_did_you_mean_not_the_old_spelling(argv, hint, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        parsed(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and hint in err and "deprecated" not in err, err
    (tmp_path / argv[1]).mkdir()  # a folder of that name is the old spelling's DB
    assert parsed(argv).db == argv[1]
    assert "deprecated" in capsys.readouterr().err


def test_new_spellings_print_no_deprecation(capsys):
    for argv in (["import", "meta-csv", "a.csv", "db", "--layout", "koniq10k", "--split-column", "fold"],
                 ["build-vqa", "db", "-o", "x.json"], ["annotate", "open", "db"], ["train", "scorer", "db", "--split", "s"],
                 ["train", "instruct", "db", "--split", "s", "--from", "r", "--llm-lora-rank", "4"]):
        parsed(argv)
    assert capsys.readouterr().err == ""


@pytest.fixture
def small_db(tmp_path):
    folder = DatabaseFolder(tmp_path / "db")
    folder.write({"prompts": pd.DataFrame({"prompt_id": ["p1"], "prompt": ["a cat"]}),
                  "images": pd.DataFrame({"image_id": ["i1"], "path": ["images/i1.png"], "prompt_id": ["p1"]})},
                 card=default_card("small"), stage="test")
    return folder


def test_info_json_file_and_the_old_bare_flag(small_db, tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["info", str(small_db.root), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["name"] == "small" and "small" in capsys.readouterr().out
    assert main(["info", str(small_db.root), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "small"
    assert main(["info", str(small_db.root), "--json"]) == 0  # the old flag: still prints the JSON
    captured = capsys.readouterr()
    assert json.loads(captured.out)["name"] == "small"
    assert "deprecated" in captured.err and "--json -" in captured.err


def test_sureal_export_old_positional_output(tmp_path, capsys):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("subject_id,image_id,perspective,score\n" + "".join(
        f"s{s},i{i},quality,{(s + i) % 5}\n" for s in range(3) for i in range(4)))
    assert main(["sureal-export", str(ratings), "-o", str(tmp_path / "new.json")]) == 0
    assert main(["sureal-export", str(ratings), str(tmp_path / "old.json")]) == 0
    assert (tmp_path / "old.json").read_text() == (tmp_path / "new.json").read_text()
    assert "sureal-export DB -o OUT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # no output named: a one-line usage error
        main(["sureal-export", str(ratings)])
    assert exit_.value.code == 2
    assert "required: -o/--out" in capsys.readouterr().err


@pytest.mark.parametrize("words", [["demo"], ["sureal-export", "DB"]])
def test_a_required_output_shows_as_required_in_the_usage(words, capsys):
    with pytest.raises(SystemExit):
        main([*words[:1], "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert " -o " in usage and "[-o" not in usage


def test_old_positional_output_becomes_the_option_whatever_the_order(tmp_path, capsys):
    from aigciqa.cli import upgrade_positional_out
    old, new = "'aigciqa demo OUT'", "'aigciqa demo -o OUT'"
    assert upgrade_positional_out(["demo", "--seed", "3", "out"], position=0, old=old, new=new) == [
        "demo", "--seed", "3", "-o", "out"]
    assert "deprecated: 'aigciqa demo OUT'" in capsys.readouterr().err
    assert upgrade_positional_out(["demo", "-o", "out", "--seed", "3"], position=0, old=old, new=new) == [
        "demo", "-o", "out", "--seed", "3"]
    assert upgrade_positional_out(["sureal-export", "--scale", "1", "5", "r.csv", "x.json"], position=1,
                                  old=old, new=new) == ["sureal-export", "--scale", "1", "5", "r.csv", "-o", "x.json"]
    assert capsys.readouterr().err.count("deprecated") == 1  # only for the spelling that was old
    both = [tmp_path / "a", tmp_path / "b"]
    for folder in both:  # not empty: a wrong rewrite is refused at once instead of running the demo
        (folder / "x").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_:  # both spellings at once: the extra word is a usage error
        main(["demo", "-o", *map(str, both)])
    assert exit_.value.code == 2 and f"unrecognized arguments: {both[1]}" in capsys.readouterr().err


@pytest.mark.parametrize("old_spelling", [False, True])
def test_demo_refuses_a_non_empty_folder_before_writing_anything(tmp_path, capsys, old_spelling):
    out = tmp_path / "out"
    (out / "db").mkdir(parents=True)
    (out / "db" / "mos.csv").write_text("image_id\n")  # e.g. an earlier demo's, with another --seed
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    argv = ["demo", str(out), "--seed", "1"] if old_spelling else ["demo", "-o", str(out), "--seed", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"aigciqa demo: error: {out}: the folder is not empty")
    assert "choose a new folder" in err[-1] and "remove" in err[-1]
    assert len(err) == (2 if old_spelling else 1) and ("deprecated" in err[0]) == old_spelling
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    (tmp_path / "file").write_text("x")
    assert main(["demo", "-o", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["a/b", "..", "../x", ".hidden", "a b", "-x", "x" * 101, ""])
def test_run_names_are_one_folder_name(name, tmp_path, capsys):
    for stage in (["scorer"], ["instruct", "--from", "r"], ["feedback", "--from", "r"]):
        with pytest.raises(SystemExit) as exit_:
            main(["train", *stage, str(tmp_path), "--split", "s", f"--run={name}"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "is not a run name" in err
    assert not (tmp_path / "runs").exists()


def test_a_good_run_name_passes_the_parser():
    parser = build_parser(["train"])
    args = parser.parse_args(["train", "scorer", "db", "--split", "s", "--run", "scorer-small_1.2"])
    assert args.run == "scorer-small_1.2"


def test_help_and_one_command_import_only_what_they_need():
    """`aigciqa --help` imports no stage and no heavy library; `build-mos` imports no other stage."""
    import subprocess
    import sys
    code = ("import sys; from aigciqa.cli import build_parser; build_parser({}); "
            "print(sorted({{m.split('.')[1] for m in sys.modules if m.startswith('aigciqa.')}})); "
            "print(sorted(m for m in ('pandas', 'numpy', 'scipy', 'torch', 'jsonschema') if m in sys.modules))")
    for commands, stages, libraries in (([], "['cli', 'errors']", "[]"), (["build-mos"], None, None)):
        out = subprocess.run([sys.executable, "-c", code.format(commands)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
        if stages is not None:
            assert out == [stages, libraries]
        else:
            assert not {"model", "generate", "annotate", "qa_builder", "datasets"} & set(ast.literal_eval(out[0]))


def test_an_input_error_names_the_subcommand_as_a_usage_error_does(tmp_path, capsys):
    assert main(["train", "scorer", str(tmp_path / "nope"), "--split", "x"]) == 2
    assert capsys.readouterr().err.startswith("aigciqa train scorer: error: ")
    with pytest.raises(SystemExit):
        main(["train", "scorer", str(tmp_path / "nope"), "--split", "x", "--epochs", "0"])
    assert capsys.readouterr().err.startswith("aigciqa train scorer: error: ")
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("aigciqa info: error: ")
