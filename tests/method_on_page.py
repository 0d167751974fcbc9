"""For each chapter, the package's functions whose source its page shows where the prose discusses the method.

One line per chapter: (module, function) pairs. The built page must show each function's
source as it is in the package (``{literalinclude}`` with ``:pyobject:``), so the page can
never drift from the code that ran.
"""

METHOD = {
    "02_baseline": [],
    "03_tuning": [],
    "04_augmentation": [],
    "05_test_results": [("cytokit.evaluation.statistics", "intervals"), ("cytokit.evaluation.simulation", "simulated_errors"),
                        ("cytokit.evaluation.statistics", "_bounds"), ("cytokit.evaluation.statistics", "compare"),
                        ("cytokit.evaluation.statistics", "verdict")],
    "06_xai": [],
}
