from cytokit import classes


def test_taxonomy_has_the_21_classes_in_model_output_order():
    assert len(classes.CODES) == 21
    assert list(classes.CODES) == sorted(classes.CODES)
    assert classes.CODES[0] == "ABE" and classes.CODES[-1] == "PMO"


def test_study_counts_match_table_2_2_1():
    assert classes.study_total() == 171_374
    assert classes.get("NGS").study_images == 29_424
    assert classes.get("ABE").study_images == 8
    assert abs(sum(c.study_percent for c in classes.CLASSES) - 100) < 0.01


def test_lineages():
    assert {c.lineage for c in classes.CLASSES} == set(classes.LINEAGES)
    assert classes.lineage_of("PLM") == "lymphopoiesis"
    assert classes.lineage_of("BLA") == "myelopoiesis"
    assert classes.lineage_of("ART") == "other"
    assert classes.lineage_of("NOT_A_CLASS") == "other"
    assert all(classes.get(c).lineage == "myelopoiesis" for c in classes.NEUTROPHIL_SERIES)


def test_unknown_code_error_lists_known_codes():
    import pytest

    with pytest.raises(KeyError, match="known codes: ABE"):
        classes.get("XYZ")
