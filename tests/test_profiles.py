import pytest

from cytokit.book import profiles


def test_shipped_profiles_load():
    assert {"smoke", "demo", "full"} <= set(profiles.available())
    for name in ("smoke", "demo", "full"):
        prof = profiles.load(name)
        assert prof["name"] == name and "image_size" in prof["parameters"]
    assert profiles.load("full")["parameters"]["image_size"] == 250


def test_unknown_profile_is_refused_with_the_choices():
    with pytest.raises(profiles.ProfileError, match="choose one of .*demo"):
        profiles.load("nonsense")


def test_chapter_sections_override_shared_parameters(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("parameters: {epochs: 3, seed: 1}\nchapters:\n  '02': {epochs: 7}\n")
    prof = profiles.load(str(f))
    assert profiles.chapter_parameters(prof, "02_baseline") == {"epochs": 7, "seed": 1}
    assert profiles.chapter_parameters(prof, "03_tuning") == {"epochs": 3, "seed": 1}


def test_malformed_profiles_are_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [1, 2]\n")
    with pytest.raises(profiles.ProfileError, match="mapping"):
        profiles.load(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("parameters: {a: [1,\n")
    with pytest.raises(profiles.ProfileError, match="not valid YAML"):
        profiles.load(str(broken))


def test_every_profile_parameter_is_declared_by_some_chapter():
    """A typo in a profile would otherwise be dropped silently by the runner."""
    import papermill

    from cytokit.book import runner

    declared = set()
    for chapter in runner.chapters():
        params = papermill.inspect_notebook(str(chapter.source))
        assert {"profile", "run_dir"} <= set(params), chapter.name
        declared |= set(params)
    for name in profiles.available():
        prof = profiles.load(name)
        used = set(prof["parameters"]).union(*[set(s) for s in prof["chapters"].values()] or [set()])
        assert used <= declared, f"profile {name}: unknown parameters {sorted(used - declared)}"
