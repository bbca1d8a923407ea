"""``aigciqa baseline``: score a database folder with baseline methods and report their metrics."""

from __future__ import annotations

from aigciqa.errors import InputError


def parse_weights(values, names: list[str]) -> dict[str, str]:
    """``--weights [NAME=]SPEC`` (repeatable) -> {NAME: SPEC}; NAME is a method or a method's second part
    (``aesthetic-head``); a bare SPEC needs exactly one method. SPEC: a local path or a Hub id."""
    from aigciqa.baselines.methods import weights_names
    accepted = weights_names(names)
    weights: dict[str, str] = {}
    for value in values or []:
        name, separator, spec = value.partition("=")
        if not separator:
            if len(names) != 1:
                raise InputError(f"--weights {value}: with several methods write METHOD=SPEC "
                                 f"(e.g. --weights {names[0]}={value})")
            name, spec = names[0], value
        name = name.strip().lower()
        if name not in accepted:
            raise InputError(f"--weights {value}: '{name}' is not among --method ({', '.join(names)}) or their "
                             f"weights parts ({', '.join(accepted)})")
        weights[name] = spec
    return weights


def run_baseline(args) -> int:
    from aigciqa.baselines.methods import method_weights, parse_methods
    from aigciqa.baselines.run import BaselineOptions, evaluate_baseline, score_folder
    from aigciqa.cli import write_json
    from aigciqa.model.cli import print_evaluation
    methods = parse_methods(args.method)
    weights = parse_weights(args.weights, [m.name for m in methods])
    results = []
    for method in methods:
        options = BaselineOptions(weights=method_weights(method.name, weights), split=args.split, preset=args.preset,
                                  batch_size=args.batch_size, cpu=args.cpu, progress=not args.quiet)
        run = score_folder(args.db, method, options)
        if args.json != "-":  # '-': stdout holds the JSON alone
            print(f"{method.name}: scores of every image in {run}")
        if args.split or args.all_images:
            result = evaluate_baseline(run, args.db, split=args.split, part=args.part)
            results.append(result)
            if args.json != "-":
                print_evaluation(result)
    if args.json:
        write_json(args.json, results)
    return 0


def run_protocol(args) -> int:
    from aigciqa.baselines.protocol import BenchmarkOptions, parse_protocol_methods, run_benchmark
    methods = parse_protocol_methods(args.methods)
    weights = parse_weights(args.weights, methods)
    options = BenchmarkOptions(
        methods=methods, repeats=args.repeats, splits=[s.strip() for s in args.splits.split(",")] if args.splits else None,
        seed=args.seed, cross=args.cross, out=args.out, preset=args.preset, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, weights=weights, stop_after=args.stop_after, cpu=args.cpu,
        progress=not args.quiet)
    result = run_benchmark(args.db, options)
    if not result["complete"]:
        print(f"benchmark: stopped after {args.stop_after} new results; run the same command again to continue "
              f"({result['out'] / 'results.json'})")
        return 0
    print((result["out"] / "table.md").read_text("utf-8"), end="")
    print("wrote " + ", ".join(str(path) for path in result["files"]))
    return 0


def register(subparsers) -> None:
    from aigciqa.baselines.methods import BASELINES
    from aigciqa.cli import add_command, add_db_argument, add_json_argument
    from aigciqa.model.presets import presets_help
    listing = "\n".join(f"          {b.name:<12} {b.description}" for b in BASELINES.values())
    parser = add_command(
        subparsers, "baseline", summary="Score every image of a database folder with baseline methods.",
        description="""
        Input: DB with images.csv and the image files; prompts.csv for the text-image methods;
        mos.csv and splits.csv (--split) for ridge and for metrics.
        Output: DB/runs/baseline-METHOD/predictions.csv (image_id, the method's score, and one
        <perspective>_prediction column oriented so that higher is better) and config.json, per method
        (with the weights used: repo id, resolved commit and sha256 of every file).
        Weights: the Hugging Face cache (HF_HOME; HF_HUB_OFFLINE=1 never downloads); fetch them first with
        'aigciqa weights download clipscore' where there is a network.
        With --split (or --all-images): the metrics of 'aigciqa evaluate' on --part (default test):
        SRCC, KRCC, PLCC raw and logistic, RMSE, preference accuracy on pairs.csv; --json FILE saves them.
        Methods (see docs/baselines.md):
""" + listing + "\n",
        example=("aigciqa baseline db/ --method niqe,brisque --split split1\n"
                 "aigciqa baseline db/ --method clipscore --weights clipscore=openai/clip-vit-large-patch14\n"
                 "aigciqa baseline db/ --method aesthetic --weights aesthetic=models/clip-l14 "
                 "--weights aesthetic-head=models/sac+logos+ava1-l14-linearMSE.pth\n"
                 "aigciqa baseline db/ --method ridge --split split1 --preset small"))
    add_db_argument(parser)
    parser.add_argument("--method", required=True, metavar="NAME[,NAME...]", help="baseline methods (see above)")
    parser.add_argument("--weights", action="append", metavar="[METHOD=]SPEC",
                        help="weights of a method: a local folder/file or a Hub id ORG/NAME[@REV][:FILE] (default: "
                             "the method's Hub id in 'aigciqa weights list'; repeatable; a bare SPEC with one method; "
                             "second parts as aesthetic-head=, imagereward-base=, pickscore-processor=)")
    parser.add_argument("--split", metavar="COLUMN", help="splits.csv column: ridge trains on its train part; "
                        "metrics on --part")
    parser.add_argument("--part", choices=("train", "val", "test"), default="test", help="part of the split")
    parser.add_argument("--all-images", action="store_true", help="metrics on every image (no --split)")
    parser.add_argument("--preset", default="small", metavar="NAME",
                        help=f"ridge: the model preset whose image encoder gives the features (default small): "
                             f"{presets_help()}")
    add_json_argument(parser, help="also write the metrics as JSON to FILE ('-': print it instead of the tables)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_baseline)

    bench = add_command(
        subparsers, "benchmark", summary="The paper's protocol: methods trained and scored on repeated splits, "
                                         "one table.",
        description="""
        Input: DB with images.csv (+ files), mos.csv, prompts.csv; splits.csv columns prompt_s<SEED>..
        (made when missing, prompt-disjoint, as 'aigciqa split' does) or the columns given by --splits.
        Each learned method (ridge, mint-iqa) is trained on every split's train part (MINT-IQA in
        DB/runs/mint-iqa-PRESET-SPLIT, ridge in DB/runs/baseline-ridge-SPLIT); every method is scored on
        the same test parts (with --cross OTHER: on every image of OTHER, Table IX).
        Output (-o, default DB/benchmark): results.json (one record per method and split, saved as each
        finishes: a killed benchmark resumes where it stopped), table.md, table.csv, table.tex (mean and
        standard deviation over splits of SRCC, PLCC after the logistic fit and KRCC per perspective and on
        average; pair accuracy with pairs.csv) and srcc.png (SRCC per method and perspective, error bars).
        Methods that answer questions (Table VIII; DB needs labels.csv) add VQA accuracy per perspective on
        the labelled test images, as 'aigciqa evaluate --vqa' computes it: mint-iqa-instruct (stage 2 on
        DB/vqa.jsonl, trained per split on that split's mint-iqa run; its LLM the preset's, or --weights
        mint-iqa-instruct=LLM), the zero-shot vision-language models instructblip
        (Salesforce/instructblip-vicuna-7b) and llava (llava-hf/llava-1.5-7b-hf), or other weights with
        --weights llava=DIR|ORG/NAME, and random (uniform guessing's expected accuracy).""",
        example=("aigciqa benchmark db/ --methods niqe,brisque,ridge,mint-iqa --repeats 3 --preset small\n"
                 "aigciqa benchmark db/ --methods brisque,mint-iqa --splits official --cross other-db/\n"
                 "aigciqa benchmark db/ --methods mint-iqa,mint-iqa-instruct,instructblip,llava,random --preset paper"))
    add_db_argument(bench)
    bench.add_argument("--methods", required=True, metavar="NAME[,NAME...]",
                       help="baselines of 'aigciqa baseline', mint-iqa, and the VQA methods mint-iqa-instruct, "
                            "instructblip, llava, random")
    bench.add_argument("--repeats", type=int, default=3, help="number of seeded splits (default 3)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the first split and of training (default 0)")
    bench.add_argument("--splits", metavar="COLUMN[,COLUMN...]", help="use these splits.csv columns instead")
    bench.add_argument("--cross", metavar="OTHER", help="test on every image of this database folder")
    bench.add_argument("-o", "--out", metavar="DIR", help="output folder (default DB/benchmark)")
    bench.add_argument("--preset", default="small", metavar="NAME",
                       help=f"MINT-IQA's preset and ridge's encoder (default small): {presets_help()}")
    bench.add_argument("--epochs", type=int, default=10, help="MINT-IQA epochs (default 10)")
    bench.add_argument("--lr", type=float, default=1e-5, help="MINT-IQA learning rate (default 1e-5)")
    bench.add_argument("--weights", action="append", metavar="METHOD=SPEC",
                       help="weights of a method: local path or Hub id ORG/NAME[@REV][:FILE] (baselines as for "
                            "'aigciqa baseline'; instructblip, llava, mint-iqa, mint-iqa-instruct)")
    bench.add_argument("--stop-after", type=int, metavar="N", help="stop after N new method-split results")
    bench.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    bench.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    bench.add_argument("--quiet", action="store_true", help="no progress output")
    bench.set_defaults(func=run_protocol)
