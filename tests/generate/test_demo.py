from aigciqa.database import DatabaseFolder
from aigciqa.demo import DEMO_GENERATORS, DemoContext, example_folder
from aigciqa.generate.demo import demo_step


def test_demo_step_makes_every_listed_image_of_the_demo_folder(tmp_path):
    context = DemoContext(out=tmp_path, n_prompts=2, samples=1)
    context.out.mkdir(exist_ok=True)
    example_folder(context)
    before = context.folder.read_table("images") if context.folder.has("images") else None
    line = demo_step(context)
    images = DatabaseFolder(context.folder.root).validate()["images"]
    assert f"{2 * len(DEMO_GENERATORS)} generated" in line
    assert set(images["generator"]) == set(DEMO_GENERATORS) and len(images) == 2 * len(DEMO_GENERATORS)
    assert set(images["weights"]) == {"tiny"} and (images["sha256"] != "").all()
    assert all((context.folder.root / path).is_file() for path in images["path"])
    if before is not None:  # the demo listed the images first: the same ids, filled in place
        assert list(images["image_id"]) == list(before["image_id"])
