import pytest

from cytokit import profiles


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
