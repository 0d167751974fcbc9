from cytokit.data import taxonomy


def test_taxonomy_has_the_21_classes_in_model_output_order():
    assert len(taxonomy.CODES) == 21
    assert list(taxonomy.CODES) == sorted(taxonomy.CODES)
    assert taxonomy.CODES[0] == "ABE" and taxonomy.CODES[-1] == "PMO"


def test_study_counts_match_table_2_2_1():
    assert taxonomy.study_total() == 171_374
    assert taxonomy.get("NGS").study_images == 29_424
    assert taxonomy.get("ABE").study_images == 8
    assert abs(sum(c.study_percent for c in taxonomy.CLASSES) - 100) < 0.01


def test_lineages():
    assert {c.lineage for c in taxonomy.CLASSES} == set(taxonomy.LINEAGES)
    assert taxonomy.lineage_of("PLM") == "lymphopoiesis"
    assert taxonomy.lineage_of("BLA") == "myelopoiesis"
    assert taxonomy.lineage_of("ART") == "other"
    assert taxonomy.lineage_of("NOT_A_CLASS") == "other"
    assert all(taxonomy.get(c).lineage == "myelopoiesis" for c in taxonomy.NEUTROPHIL_SERIES)


def test_unknown_code_error_lists_known_codes():
    import pytest

    with pytest.raises(KeyError, match="known codes: ABE"):
        taxonomy.get("XYZ")
